"""Retention of stored records: how long each record type is kept, and the one bounded purge loop every service's
retention job runs.

A service declares its record types (``RecordRetention``: a default, a floor and a ceiling in days) and reads them
once at start with ``load_retention_policy``: each is the setting ``RETENTION_<RECORD_TYPE>_DAYS``, and a value
outside its bounds stops the process with one line naming it, so nobody configures "keep the audit trail 0 days".
The SQL of each purge lives in the owning service's store; ``RetentionJob`` only computes cut-offs (pure, from an
injected clock) and calls the purges in bounded rounds: at most ``batch_rows`` rows per round (one short
transaction), a pause between rounds, at most ``rounds_max`` rounds per record type per sweep, then the next record
type gets its turn. Rows purged are counted per record type (``wallet_retention_purged_rows_total``).

A purge never removes a row something still refers to (an open case's assessment, a live session); each store's
query says how, and each service's tests check it. This module knows no record type.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter, Gauge

from services.kit.config import Env
from services.kit.db import transaction

log = logging.getLogger(__name__)

# A hundred years: no record type is kept longer, and timedelta arithmetic stays far from its limits.
RETENTION_DAYS_MAX = 100 * 366
PURGE_BATCH_ROWS_DEFAULT = 500
PURGE_BATCH_ROWS_MAX = 10_000
# Per record type per sweep: a backlog (the first sweep after years) is worked off over several sweeps, and one
# record type's backlog does not starve the others.
PURGE_ROUNDS_PER_SWEEP_MAX = 100
# Between two rounds of one record type: the database serves calls in between.
PURGE_ROUND_PAUSE_S_DEFAULT = 0.05
SWEEP_INTERVAL_S_DEFAULT = 3600.0
SWEEP_ERROR_PAUSE_S = 5.0
assert 0 < PURGE_BATCH_ROWS_DEFAULT <= PURGE_BATCH_ROWS_MAX
assert PURGE_ROUNDS_PER_SWEEP_MAX > 0

RECORD_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")

PURGED_ROWS = Counter(
    "wallet_retention_purged_rows_total",
    "Rows deleted or tombstoned by retention jobs because their retention had passed, by record type.",
    ["service", "record_type"],
)
PURGE_BACKLOG = Gauge(
    "wallet_retention_backlog",
    "1 when the last sweep stopped at its round limit with rows past retention still left, by record type.",
    ["service", "record_type"],
)
PURGE_ERRORS = Counter(
    "wallet_retention_purge_errors_total",
    "Purge rounds that failed (retried next sweep).",
    ["service", "record_type"],
)
SWEEP_COMPLETED_AT = Gauge(
    "wallet_retention_sweep_completed_timestamp_seconds", "When the retention job last finished a sweep.", ["service"]
)


@dataclass(frozen=True, slots=True)
class RecordRetention:
    """One record type's retention: kept ``default_days`` unless ``RETENTION_<RECORD_TYPE>_DAYS`` says otherwise,
    never less than ``min_days`` (a legal or security floor) nor more than ``max_days`` (data minimisation)."""

    record_type: str  # ``<service>_<records>``, e.g. ``auth_sessions``: names the setting and the metric label
    default_days: int
    min_days: int
    max_days: int

    def __post_init__(self) -> None:
        assert RECORD_TYPE_PATTERN.match(self.record_type), self.record_type
        assert self.min_days >= 1, self.record_type
        assert self.min_days <= self.default_days, self.record_type
        assert self.default_days <= self.max_days, self.record_type
        assert self.max_days <= RETENTION_DAYS_MAX, self.record_type

    @property
    def setting(self) -> str:
        return f"RETENTION_{self.record_type.upper()}_DAYS"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days to keep, per record type, as configured (validated against each type's bounds)."""

    days_by_record_type: Mapping[str, int]

    def days(self, record_type: str) -> int:
        return self.days_by_record_type[record_type]

    def cutoff(self, record_type: str, now: datetime) -> datetime:
        """Rows whose retention clock started before this instant are past retention."""
        assert now.tzinfo is not None, "retention cut-offs are computed from an aware UTC clock"
        days = self.days(record_type)
        assert 1 <= days <= RETENTION_DAYS_MAX
        cutoff = now - timedelta(days=days)
        assert cutoff < now
        return cutoff


def load_retention_policy(env: Env, records: Sequence[RecordRetention]) -> RetentionPolicy:
    """Reads ``RETENTION_<RECORD_TYPE>_DAYS`` for each record type; a value out of bounds raises ``ConfigError``
    naming the setting and its bounds."""
    names = [record.record_type for record in records]
    assert len(names) == len(set(names)), "a record type is declared twice"
    days: dict[str, int] = {}
    for record in records:
        days[record.record_type] = env.integer(
            record.setting, record.default_days, min_value=record.min_days, max_value=record.max_days
        )
    return RetentionPolicy(days)


# (cut-off, at most this many rows) -> rows purged, in one transaction of the owning store.
Purge = Callable[[datetime, int], Awaitable[int]]


async def run_purge(pool: asyncpg.Pool, statement: str, *args: object, prelude: str | None = None) -> int:
    """Runs one bounded purge statement from a service's store in its own short transaction (``prelude`` first, e.g.
    a ``SET LOCAL`` the table's trigger checks) and returns what the statement selects: the count of rows it
    deleted."""
    async with transaction(pool) as connection:
        if prelude is not None:
            await connection.execute(prelude)
        purged = await connection.fetchval(statement, *args)
    return int(purged)


@dataclass(frozen=True, slots=True)
class PurgeTarget:
    """One purge of one record type (a record type may span several tables, each its own target). ``per_row``:
    the rows carry their own retain-until (a contact's purpose), so the purge gets ``now`` instead of a cut-off."""

    record_type: str
    purge: Purge
    per_row: bool = False


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The cut-off each target purges up to in one sweep (pure: computed from the policy and one clock reading)."""

    cutoffs: tuple[datetime, ...]


def plan_sweep(policy: RetentionPolicy, targets: Sequence[PurgeTarget], now: datetime) -> SweepPlan:
    cutoffs = tuple(now if target.per_row else policy.cutoff(target.record_type, now) for target in targets)
    for cutoff in cutoffs:
        assert cutoff <= now
    return SweepPlan(cutoffs)


@dataclass
class RetentionJob:
    """Runs a service's purges: ``sweep_once`` (tests, one pass), ``run`` (a background job, every
    ``interval_s``). Every replica may run it: purges lock the rows they delete with SKIP LOCKED, so two replicas
    share a backlog instead of queueing behind each other."""

    service: str
    policy: RetentionPolicy
    targets: Sequence[PurgeTarget]
    clock: Callable[[], datetime]
    batch_rows: int = PURGE_BATCH_ROWS_DEFAULT
    rounds_max: int = PURGE_ROUNDS_PER_SWEEP_MAX
    round_pause_s: float = PURGE_ROUND_PAUSE_S_DEFAULT
    interval_s: float = SWEEP_INTERVAL_S_DEFAULT
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def __post_init__(self) -> None:
        assert 0 < self.batch_rows <= PURGE_BATCH_ROWS_MAX
        assert 0 < self.rounds_max <= PURGE_ROUNDS_PER_SWEEP_MAX
        for target in self.targets:
            assert target.per_row or target.record_type in self.policy.days_by_record_type, target.record_type

    async def sweep_once(self, *, keep_going: bool = False) -> dict[str, int]:
        """One pass over every target; returns rows purged per record type. ``keep_going``: a failing target is
        logged and counted and the others still run (the background job); otherwise the error propagates."""
        plan = plan_sweep(self.policy, self.targets, self.clock())
        purged: dict[str, int] = {}
        for target, cutoff in zip(self.targets, plan.cutoffs, strict=True):
            try:
                rows = await self._purge_target(target, cutoff)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                if not keep_going:
                    raise
                PURGE_ERRORS.labels(self.service, target.record_type).inc()
                log.warning(
                    "retention purge failed; retried next sweep",
                    extra={"fields": {"record_type": target.record_type, "error": type(err).__name__}},
                )
                rows = 0
            purged[target.record_type] = purged.get(target.record_type, 0) + rows
        SWEEP_COMPLETED_AT.labels(self.service).set(self.clock().timestamp())
        return purged

    async def _purge_target(self, target: PurgeTarget, cutoff: datetime) -> int:
        total = 0
        for round_number in range(self.rounds_max):
            if round_number > 0:
                await self.sleep(self.round_pause_s)
            rows = await target.purge(cutoff, self.batch_rows)
            assert 0 <= rows <= self.batch_rows, (target.record_type, rows)
            total += rows
            PURGED_ROWS.labels(self.service, target.record_type).inc(rows)
            if rows < self.batch_rows:
                PURGE_BACKLOG.labels(self.service, target.record_type).set(0)
                return total
        PURGE_BACKLOG.labels(self.service, target.record_type).set(1)
        return total

    async def run(self) -> None:
        """Sweeps every ``interval_s`` until cancelled. Sweeps are not traced: they run rarely and their rounds are
        counted by the metrics above."""
        while True:
            with suppress_instrumentation():
                purged = await self.sweep_once(keep_going=True)
            if any(purged.values()):
                log.info("retention sweep purged rows", extra={"fields": {"purged": purged}})
            await self.sleep(self.interval_s)
