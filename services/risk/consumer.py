"""The ledger event consumer: reads ``wallet.ledger.v1.events`` in a consumer group and feeds the feature windows,
the case holds and the AML reports. At least once in, idempotent effects out (event-id dedup in the Lua writer,
unique keys on AML reports, status guards on cases). Entries a dead replica left unacknowledged are claimed after
``CONSUMER_CLAIM_IDLE_MS``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import redis.asyncio as redis_asyncio
from google.protobuf.message import DecodeError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter

from services.kit.event_consumer import consuming
from services.kit.outbox import decode_entry
from services.risk import limits
from services.risk.config import RiskConfig
from services.risk.feature_windows import KEYS
from services.risk.service_cases import CaseService, PostedFacts
from wallet.common.v1 import events_pb2
from wallet.ledger.v1 import ledger_events_pb2

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter("wallet_risk_events_consumed_total", "Ledger events applied.", ["event_type"])
EVENTS_FAILED = Counter("wallet_risk_events_failed_total", "Ledger events that failed and will be redelivered.")
EVENTS_DEAD_LETTERED = Counter(
    "wallet_risk_events_dead_lettered_total",
    "Ledger events given up after repeated failures (kept in the dead-letter stream).",
)
DEAD_LETTER_STREAM = KEYS.key("dead_letter", "ledger_events")
DEAD_LETTER_MAX_LENGTH = 10_000
DEAD_LETTER_TTL_S = 30 * 24 * 3600

POSTED = ledger_events_pb2.TransferPosted.DESCRIPTOR.full_name
PENDING = ledger_events_pb2.TransferPending.DESCRIPTOR.full_name
EXPIRED = ledger_events_pb2.TransferExpired.DESCRIPTOR.full_name


class LedgerEventConsumer:
    def __init__(
        self,
        config: RiskConfig,
        redis: redis_asyncio.Redis,
        cases: CaseService,
        *,
        claim_idle_ms: int = limits.CONSUMER_CLAIM_IDLE_MS,
    ) -> None:
        self._claim_idle_ms = claim_idle_ms
        self._stream = config.ledger_events_stream
        self._group = config.consumer_group
        self._redis = redis
        self._cases = cases
        self._name = f"risk-{uuid.uuid4().hex[:12]}"

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis_asyncio.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def run(self) -> None:
        backoff_s = 0.1
        while True:
            try:
                await self.ensure_group()
                while True:
                    await self.consume_once(block_ms=limits.CONSUMER_BLOCK_MS)
                    backoff_s = 0.1
            except asyncio.CancelledError:
                raise
            except (OSError, redis_asyncio.RedisError) as err:
                log.warning("ledger event consumer failed; retrying", extra={"fields": {"error": type(err).__name__}})
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, limits.CONSUMER_BACKOFF_MAX_S)
            except Exception:
                # A bug must not silently stop the feature windows: log it loudly and keep consuming.
                log.exception("ledger event consumer crashed; restarting it")
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, limits.CONSUMER_BACKOFF_MAX_S)

    async def consume_once(self, *, block_ms: int | None = None) -> int:
        """Handles one batch (claimed stale entries first, then new ones); returns how many were acknowledged."""
        # The polls (mostly empty) are not traced; each event handled gets its own span, linked to its producer.
        with suppress_instrumentation():
            claim: Any = await self._redis.xautoclaim(
                self._stream,
                self._group,
                self._name,
                self._claim_idle_ms,
                "0-0",
                count=limits.CONSUMER_BATCH_MAX,
            )
        entries: list[Any] = await self._without_poison(list(claim[1]))
        if not entries:
            with suppress_instrumentation():
                response: Any = await self._redis.xreadgroup(
                    self._group, self._name, {self._stream: ">"}, count=limits.CONSUMER_BATCH_MAX, block=block_ms
                )
            for _, stream_entries in response or []:
                entries.extend(stream_entries)
        acknowledged = 0
        for entry_id, fields in entries:
            if not fields:
                continue
            try:
                envelope = decode_entry(fields)
                with consuming(self._group, self._stream, envelope):
                    await self._handle(envelope)
            except (
                OSError,
                ValueError,
                KeyError,
                DecodeError,
                redis_asyncio.RedisError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as err:
                # Left unacknowledged: claimed again after CONSUMER_CLAIM_IDLE_MS (dead-lettered after a few tries).
                EVENTS_FAILED.inc()
                log.warning("ledger event not applied", extra={"fields": {"error": type(err).__name__}})
                continue
            await self._redis.xack(self._stream, self._group, entry_id)
            acknowledged += 1
        return acknowledged

    async def _without_poison(self, claimed: list[Any]) -> list[Any]:
        """Claimed entries, minus those delivered too often: those move to the dead-letter stream (capped, with a
        TTL), are acknowledged and logged at ERROR, so one bad event cannot be retried forever."""
        kept: list[Any] = []
        for entry_id, fields in claimed:
            pending: Any = await self._redis.xpending_range(
                self._stream, self._group, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 0
            if deliveries <= limits.CONSUMER_DELIVERIES_MAX or not fields:
                kept.append((entry_id, fields))
                continue
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(DEAD_LETTER_STREAM, fields, maxlen=DEAD_LETTER_MAX_LENGTH, approximate=True)
                pipe.expire(DEAD_LETTER_STREAM, DEAD_LETTER_TTL_S)
                pipe.xack(self._stream, self._group, entry_id)
                await pipe.execute()
            EVENTS_DEAD_LETTERED.inc()
            log.error(
                "ledger event dead-lettered after repeated failures",
                extra={"fields": {"entry_id": entry_id.decode(), "deliveries": deliveries}},
            )
        return kept

    async def _handle(self, envelope: events_pb2.EventEnvelope) -> None:
        org = envelope.organization_id
        if envelope.event_type == POSTED:
            posted = ledger_events_pb2.TransferPosted()
            envelope.payload.Unpack(posted)
            facts = posted.transfer
            amount = posted.posted_amount if posted.HasField("posted_amount") else facts.amount
            moment = posted.posted_at if posted.HasField("posted_at") else envelope.occurred_at
            await self._cases.on_transfer_posted(
                PostedFacts(
                    organization_id=org,
                    event_id=envelope.event_id,
                    transfer_id=facts.transfer_id,
                    debit_account_id=facts.debit_account_id,
                    credit_account_id=facts.credit_account_id,
                    debit_customer_id=facts.debit_customer_id,
                    counterparty_id="",
                    device_id=facts.device_id,
                    amount_minor=amount.amount_minor,
                    currency=amount.currency,
                    posted_at_s=moment.ToNanoseconds() / 1e9,
                )
            )
        elif envelope.event_type == PENDING:
            pending = ledger_events_pb2.TransferPending()
            envelope.payload.Unpack(pending)
            await self._cases.on_transfer_pending(org, pending.case_id, pending.hold_expires_at.ToNanoseconds() / 1e9)
        elif envelope.event_type == EXPIRED:
            expired = ledger_events_pb2.TransferExpired()
            envelope.payload.Unpack(expired)
            await self._cases.on_transfer_expired(org, expired.transfer.transfer_id)
        EVENTS_CONSUMED.labels(envelope.event_type.rsplit(".", 1)[-1]).inc()
