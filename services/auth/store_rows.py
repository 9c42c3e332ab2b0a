"""Conversions between Postgres values and the domain's (epoch seconds, tuples), shared by the store modules."""

from __future__ import annotations

from datetime import UTC, datetime


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def ts_or_none(seconds: float | None) -> datetime | None:
    return None if seconds is None else ts(seconds)


def seconds(value: datetime) -> float:
    return value.timestamp()


def seconds_or_none(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()
