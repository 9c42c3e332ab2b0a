"""The ledger's background jobs, started once the server is ready: hold expiry, block sealing, invariant checks
(exported as Prometheus gauges) and the outbox relay. Each loop is bounded per round and survives database errors
with a pause; cancellation (server stop) ends it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter, Gauge

from services.kit.outbox import OutboxRelay
from services.kit.service_main import BackgroundJob
from services.ledger import limits
from services.ledger.app import LedgerApp
from services.ledger.loyalty_consumer import loyalty_consumer

log = logging.getLogger(__name__)

INVARIANT_VIOLATIONS = Gauge(
    "wallet_ledger_invariant_violations", "Invariant violations found by the last check, by kind.", ["kind"]
)
DEBITS_MINUS_CREDITS = Gauge(
    "wallet_ledger_debits_minus_credits_minor",
    "Σ posted debits - Σ posted credits over all tenants, per currency (0 when the books balance).",
    ["currency"],
)
INVARIANTS_CHECKED_AT = Gauge(
    "wallet_ledger_invariants_checked_timestamp_seconds", "When invariants were last checked."
)
INVARIANT_KIND_NAMES = {
    1: "debits_equal_credits",
    2: "balance_rule",
    3: "balance_equals_postings",
    4: "transfer_in_chain",
}
HOLDS_EXPIRED = Counter("wallet_ledger_holds_expired_total", "Pending holds the sweeper expired.")
HOLD_EXPIRY_BACKLOG = Gauge(
    "wallet_ledger_hold_expiry_backlog",
    "Holds past their expiry not finalized yet, after the last sweep (capped at HOLD_BACKLOG_COUNT_MAX).",
)
JOB_ERROR_PAUSE_S = 1.0


async def _every(name: str, interval_s: float, round_: Callable[[], Awaitable[object]]) -> None:
    while True:
        try:
            # Rounds run every second or so and mostly find nothing: their queries are not traced (what they change
            # is published as events, each with its own trace).
            with suppress_instrumentation():
                await round_()
        except asyncio.CancelledError:
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            log.warning("ledger job round failed", extra={"fields": {"job": name, "error": type(err).__name__}})
            await asyncio.sleep(JOB_ERROR_PAUSE_S)
        await asyncio.sleep(interval_s)


async def expire_holds_round(app: LedgerApp) -> int:
    total = 0
    # Drain a backlog in bounded rounds before sleeping.
    for _ in range(10):
        expired = await app.transfers.expire_due_holds(app.clock())
        total += expired
        if expired < limits.EXPIRY_SWEEP_BATCH_MAX:
            break
    HOLDS_EXPIRED.inc(total)
    HOLD_EXPIRY_BACKLOG.set(await app.transfers.due_hold_backlog(app.clock()))
    return total


async def check_invariants_round(app: LedgerApp) -> None:
    report = await app.integrity.check_invariants(None)
    counts = dict.fromkeys(INVARIANT_KIND_NAMES.values(), 0)
    for finding in report.violations:
        counts[INVARIANT_KIND_NAMES[finding.kind]] += 1
    for kind, count in counts.items():
        INVARIANT_VIOLATIONS.labels(kind).set(count)
    per_currency: dict[str, int] = {}
    for _, currency, debits, credits in report.totals:
        per_currency[currency] = per_currency.get(currency, 0) + debits - credits
    for currency, difference in per_currency.items():
        DEBITS_MINUS_CREDITS.labels(currency).set(difference)
    INVARIANTS_CHECKED_AT.set(report.checked_at.timestamp())
    if report.violations:
        log.error("ledger invariants violated", extra={"fields": {"counts": counts}})


def background_jobs(app: LedgerApp) -> list[BackgroundJob]:
    runtime = app.runtime
    return [
        _every("expire_holds", limits.EXPIRY_SWEEP_INTERVAL_S, lambda: expire_holds_round(app)),
        _every(
            "expire_approvals",
            limits.APPROVAL_EXPIRY_SWEEP_INTERVAL_S,
            lambda: app.approvals.expire_due_approvals(app.clock()),
        ),
        _every("seal_blocks", limits.SEAL_INTERVAL_S, app.integrity.seal_pending),
        _every("check_invariants", limits.INVARIANT_CHECK_INTERVAL_S, lambda: check_invariants_round(app)),
        OutboxRelay("ledger", runtime.pool, runtime.redis).run(),
        loyalty_consumer(runtime.redis, app.loyalty).run(),
    ]
