"""The Redis client factory, the per-service key prefix, and Redis latency as a Prometheus histogram.

Each service owns its keys under ``<service>:``; nothing personal is ever stored in Redis (blind indexes and ids
only). The latency label is the command name only (a bounded set), never a key or an argument.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as redis_asyncio
from prometheus_client import Histogram
from redis.asyncio.client import Pipeline

from services.kit.metrics import LATENCY_BUCKETS_S

SOCKET_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 64


COMMAND_NAME_CHARS_MAX = 32

REDIS_LATENCY = Histogram(
    "wallet_redis_command_seconds",
    "Time of a Redis command or pipeline round trip, in seconds, by command name.",
    ["command"],
    buckets=LATENCY_BUCKETS_S,
)


def _command_name(args: tuple[Any, ...]) -> str:
    if not args:
        return "UNKNOWN"
    name = args[0].decode(errors="replace") if isinstance(args[0], bytes) else str(args[0])
    return name.split(" ", 1)[0].upper()[:COMMAND_NAME_CHARS_MAX]


class TimedPipeline(Pipeline):
    """A pipeline whose whole round trip is observed once, as ``PIPELINE`` (or ``MULTI`` when transactional)."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error)
        finally:
            REDIS_LATENCY.labels("MULTI" if self.is_transaction else "PIPELINE").observe(
                time.perf_counter() - started
            )


class TimedRedis(redis_asyncio.Redis):
    """``redis.asyncio.Redis`` that observes every command's latency (a clock read and a histogram update)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            REDIS_LATENCY.labels(_command_name(args)).observe(time.perf_counter() - started)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> TimedPipeline:
        return TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def create_redis(url: str) -> redis_asyncio.Redis:
    return TimedRedis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        health_check_interval=30,
    )


class KeySpace:
    """Builds keys under one service's prefix: ``KeySpace("auth").key("lockout", account_id)``."""

    def __init__(self, service: str) -> None:
        assert service.isidentifier(), service
        self.prefix = f"{service}:"

    def key(self, *parts: str) -> str:
        assert parts
        assert all(":" not in part for part in parts[:-1])
        return self.prefix + ":".join(parts)
