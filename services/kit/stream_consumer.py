"""Consuming an event stream (Redis Streams) in a consumer group: at least once in, so handlers must be idempotent by
``event_id`` (the relay may publish an event twice, and an entry is redelivered until it is acknowledged).

One ``StreamConsumer`` per process and purpose: it creates its group if missing, first re-claims entries another
consumer of the group left unacknowledged for ``claim_idle_ms`` (a replica that died mid-batch), then reads new
ones. A handler error leaves the entry unacknowledged (claimed again later); after ``deliveries_max`` deliveries
the entry is acknowledged and logged at ERROR, so one poison event cannot block the group forever. Every loop is
bounded per round; Redis outages back off.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_asyncio
from google.protobuf.message import DecodeError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import Counter

from services.kit.event_consumer import consuming
from services.kit.outbox import decode_entry
from wallet.common.v1 import events_pb2

log = logging.getLogger(__name__)

CONSUMER_BATCH_MAX = 100
CONSUMER_BLOCK_MS = 1_000
CONSUMER_CLAIM_IDLE_MS = 30_000
CONSUMER_DELIVERIES_MAX = 5
CONSUMER_BACKOFF_MAX_S = 5.0

EVENTS_HANDLED = Counter("wallet_stream_events_handled_total", "Stream entries handled and acknowledged.", ["group"])
EVENTS_FAILED = Counter("wallet_stream_events_failed_total", "Stream entries whose handler failed.", ["group"])
EVENTS_ABANDONED = Counter(
    "wallet_stream_events_abandoned_total",
    "Stream entries acknowledged unhandled after too many deliveries.",
    ["group"],
)

EnvelopeHandler = Callable[[events_pb2.EventEnvelope], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    stream: str
    group: str
    # Where a new group starts: "$" = only events published from now on, "0" = the whole retained stream.
    start_id: str = "$"
    batch_max: int = CONSUMER_BATCH_MAX
    claim_idle_ms: int = CONSUMER_CLAIM_IDLE_MS
    deliveries_max: int = CONSUMER_DELIVERIES_MAX


class StreamConsumer:
    def __init__(
        self,
        redis: redis_asyncio.Redis,
        settings: ConsumerSettings,
        handler: EnvelopeHandler,
        *,
        retryable: tuple[type[BaseException], ...] = (),
    ) -> None:
        assert settings.batch_max > 0
        assert settings.deliveries_max > 0
        self._redis = redis
        self._settings = settings
        self._handler = handler
        # Handler errors that mean "try again later" (database down …); anything else is a bug and is logged loudly.
        self._retryable = retryable
        self._name = f"{settings.group}-{uuid.uuid4().hex[:12]}"

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(
                self._settings.stream, self._settings.group, id=self._settings.start_id, mkstream=True
            )
        except redis_asyncio.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def run(self) -> None:
        """Consumes until cancelled (a background job)."""
        backoff_s = 0.1
        while True:
            try:
                await self.ensure_group()
                while True:
                    await self.consume_once(block_ms=CONSUMER_BLOCK_MS)
                    backoff_s = 0.1
            except asyncio.CancelledError:
                raise
            except (OSError, redis_asyncio.RedisError) as err:
                log.warning(
                    "stream consumer failed; retrying",
                    extra={"fields": {"group": self._settings.group, "error": type(err).__name__}},
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, CONSUMER_BACKOFF_MAX_S)

    async def consume_once(self, *, block_ms: int | None = None) -> int:
        """Handles one batch (stale claimed entries first, else new ones); returns how many were acknowledged."""
        s = self._settings
        # The polls (mostly empty, every block period) are not traced; each event handled gets its own span,
        # linked to the trace that produced it.
        with suppress_instrumentation():
            claimed: Any = await self._redis.xautoclaim(
                s.stream, s.group, self._name, s.claim_idle_ms, "0-0", count=s.batch_max
            )
        entries: list[Any] = await self._without_poison(list(claimed[1]))
        if not entries:
            with suppress_instrumentation():
                response: Any = await self._redis.xreadgroup(
                    s.group, self._name, {s.stream: ">"}, count=s.batch_max, block=block_ms
                )
            for _, stream_entries in response or []:
                entries.extend(stream_entries)
        # One XACK for the batch's handled entries instead of a round trip per entry (a busy ledger's own stream
        # carries an event per transfer). A crash before it redelivers them: delivery is at least once, and
        # handlers are idempotent by event id. An entry whose handler failed stays pending, as before.
        handled: list[Any] = []
        for entry_id, fields in entries:
            if fields and not await self._handled(fields):
                continue
            handled.append(entry_id)
        if handled:
            await self._redis.xack(s.stream, s.group, *handled)
        return len(handled)

    async def _handled(self, fields: dict[bytes, bytes]) -> bool:
        try:
            envelope = decode_entry(fields)
        except (KeyError, ValueError, DecodeError) as err:
            # Not an envelope: nothing any delivery could do with it.
            log.error("unreadable stream entry skipped", extra={"fields": {"error": type(err).__name__}})
            return True
        try:
            # A CONSUMER span linked to the producer, and the consumer-lag gauge (kit event_consumer).
            with consuming(self._settings.group, self._settings.stream, envelope):
                await self._handler(envelope)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            EVENTS_FAILED.labels(self._settings.group).inc()
            fields_out = {"group": self._settings.group, "event_id": envelope.event_id, "error": type(err).__name__}
            if isinstance(err, self._retryable):
                log.warning("event not handled; it will be redelivered", extra={"fields": fields_out})
            else:
                log.exception("event handler failed; it will be redelivered", extra={"fields": fields_out})
            return False
        EVENTS_HANDLED.labels(self._settings.group).inc()
        return True

    async def _without_poison(self, claimed: list[Any]) -> list[Any]:
        kept: list[Any] = []
        s = self._settings
        for entry_id, fields in claimed:
            pending: Any = await self._redis.xpending_range(s.stream, s.group, min=entry_id, max=entry_id, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 0
            if deliveries <= s.deliveries_max or not fields:
                kept.append((entry_id, fields))
                continue
            await self._redis.xack(s.stream, s.group, entry_id)
            EVENTS_ABANDONED.labels(s.group).inc()
            log.error(
                "stream entry abandoned after repeated failures",
                extra={"fields": {"group": s.group, "entry_id": entry_id.decode(), "deliveries": deliveries}},
            )
        return kept
