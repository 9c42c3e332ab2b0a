"""Transactional outbox: events written in the same Postgres transaction as the facts they describe, then relayed
to a Redis Stream at least once.

Each service that publishes events creates the table ``OUTBOX_TABLE_SQL`` describes in its own migrations (copy
the statement into a numbered migration; the kit's tests pin its shape).

Ordering: the relay publishes rows in ``id`` order and one relay runs at a time (a session advisory lock), so events
of one partition (e.g. an account) arrive in commit order as long as producers serialize on that partition — which
they do, because every write to an account locks its row before inserting its outbox row. Delivery is at least once:
a crash between XADD and DELETE republishes; consumers deduplicate by ``event_id``. A Redis outage only delays
delivery: rows stay in the table and the relay catches up when Redis answers again.

Tracing: each envelope carries the ``traceparent`` of the transaction that wrote it; a relay round is a PRODUCER span
linked to (some of) those transactions, and consumers handle each event in a span linked to it
(``services.kit.event_consumer.consuming``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg
import redis.asyncio as redis_asyncio
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanKind
from prometheus_client import Counter, Gauge

from services.kit.event_consumer import link_to_producer
from services.kit.ids import uuid7
from services.kit.migrations import advisory_lock_key
from services.kit.telemetry import current_traceparent
from wallet.common.v1 import events_pb2

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

OUTBOX_TABLE_SQL = """
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    stream        text NOT NULL,
    partition_key text NOT NULL,
    envelope      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
"""

# Events per relay round trip: one SELECT, one pipelined XADD batch, one DELETE.
RELAY_BATCH_SIZE = 500
RELAY_POLL_INTERVAL_S = 0.1
RELAY_BACKOFF_MAX_S = 5.0
# Streams are capped (approximately) so Redis memory stays bounded; consumers that fall this far behind re-read
# from the owning service's List RPCs.
STREAM_MAX_LENGTH = 1_000_000
STREAM_ENTRY_FIELD = "event"
# A relay round's span links to this many of the transactions it relays (decoding every envelope of a 500-row round
# for its traceparent would cost more than the links are worth; OTel keeps at most 128 links anyway).
RELAY_SPAN_LINKS_MAX = 32

OUTBOX_PUBLISHED = Counter("wallet_outbox_published_total", "Events relayed to Redis Streams.", ["service", "stream"])
OUTBOX_LAG_SECONDS = Gauge("wallet_outbox_lag_seconds", "Age of the oldest unrelayed event, in seconds.", ["service"])
OUTBOX_RELAY_ERRORS = Counter("wallet_outbox_relay_errors_total", "Relay rounds that failed.", ["service"])


def make_envelope(
    *,
    event_type_payload: Message,
    organization_id: str,
    partition_key: str,
    event_id: uuid.UUID | None = None,
    occurred_at_s: float | None = None,
    traceparent: str | None = None,
) -> events_pb2.EventEnvelope:
    """``traceparent`` defaults to the current span's; a producer writing many events at once passes it once."""
    envelope = events_pb2.EventEnvelope(
        event_id=str(event_id or uuid7()),
        event_type=event_type_payload.DESCRIPTOR.full_name,
        organization_id=organization_id,
        partition_key=partition_key,
        traceparent=current_traceparent() if traceparent is None else traceparent,
    )
    # Filled in place rather than built apart and copied in (a batch of transfers makes an envelope per item).
    envelope.occurred_at.FromNanoseconds(int((time.time() if occurred_at_s is None else occurred_at_s) * 1e9))
    envelope.payload.Pack(event_type_payload)
    return envelope


async def enqueue(connection: asyncpg.Connection, stream: str, envelope: events_pb2.EventEnvelope) -> None:
    """Adds an event to the outbox; call inside the transaction that writes the fact."""
    assert connection.is_in_transaction(), "outbox rows must be written in the fact's transaction"
    await connection.execute(
        "INSERT INTO outbox (event_id, stream, partition_key, envelope) VALUES ($1, $2, $3, $4)",
        uuid.UUID(envelope.event_id),
        stream,
        envelope.partition_key,
        envelope.SerializeToString(),
    )


def _producer_links(rows: list[asyncpg.Record]) -> list[Link]:
    links: list[Link] = []
    for row in rows:
        envelope = events_pb2.EventEnvelope.FromString(bytes(row["envelope"]))
        links.extend(link_to_producer(envelope.traceparent))
    return links


@dataclass(frozen=True, slots=True)
class RelayRound:
    published: int
    more_waiting: bool


class OutboxRelay:
    """Moves outbox rows to their Redis Streams. Run ``run()`` as a background task; one replica relays at a time."""

    def __init__(
        self,
        service_name: str,
        pool: asyncpg.Pool,
        redis: redis_asyncio.Redis,
        *,
        batch_size: int = RELAY_BATCH_SIZE,
        poll_interval_s: float = RELAY_POLL_INTERVAL_S,
    ) -> None:
        assert 0 < batch_size <= 10_000
        self._service_name = service_name
        self._pool = pool
        self._redis = redis
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._lock_key = advisory_lock_key(f"outbox-relay:{service_name}")

    async def relay_once(self, connection: asyncpg.Connection) -> RelayRound:
        # The poll runs ten times a second, mostly finding nothing: untraced, or every service's trace file would be
        # mostly one-span traces of an empty SELECT. A round that relays something is traced below.
        with suppress_instrumentation():
            rows = await connection.fetch(
                "SELECT id, stream, envelope, created_at FROM outbox ORDER BY id LIMIT $1", self._batch_size
            )
        if not rows:
            OUTBOX_LAG_SECONDS.labels(self._service_name).set(0)
            return RelayRound(published=0, more_waiting=False)
        OUTBOX_LAG_SECONDS.labels(self._service_name).set(max(0.0, time.time() - rows[0]["created_at"].timestamp()))
        with _tracer.start_as_current_span(
            "publish outbox",
            context=otel_context.Context(),  # one trace per relay round, linked to the transactions it relays
            kind=SpanKind.PRODUCER,
            links=_producer_links(rows[:RELAY_SPAN_LINKS_MAX]),
            attributes={
                "messaging.system": "redis",
                "messaging.operation": "publish",
                "messaging.batch.message_count": len(rows),
            },
        ):
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        row["stream"],
                        {STREAM_ENTRY_FIELD: bytes(row["envelope"])},
                        maxlen=STREAM_MAX_LENGTH,
                        approximate=True,
                    )
                await pipe.execute()
            ids = [row["id"] for row in rows]
            await connection.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        for row in rows:
            OUTBOX_PUBLISHED.labels(self._service_name, row["stream"]).inc()
        return RelayRound(published=len(rows), more_waiting=len(rows) == self._batch_size)

    async def run(self) -> None:
        """Relays until cancelled; survives Postgres and Redis outages with bounded backoff."""
        backoff_s = self._poll_interval_s
        while True:
            try:
                async with self._pool.acquire() as connection:
                    if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                        # Another replica relays; check again later in case it goes away.
                        await asyncio.sleep(1.0)
                        continue
                    try:
                        await self._relay_while_holding_lock(connection)
                    finally:
                        await connection.execute("SELECT pg_advisory_unlock($1)", self._lock_key)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, redis_asyncio.RedisError) as err:
                OUTBOX_RELAY_ERRORS.labels(self._service_name).inc()
                log.warning("outbox relay failed; retrying", extra={"fields": {"error": type(err).__name__}})
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, RELAY_BACKOFF_MAX_S)
            else:
                backoff_s = self._poll_interval_s

    async def _relay_while_holding_lock(self, connection: asyncpg.Connection) -> None:
        idle_rounds = 0
        # Give the lock back now and then, so a relay on another replica can take over after a deploy.
        while idle_rounds < 100:
            result = await self.relay_once(connection)
            if result.more_waiting:
                continue
            idle_rounds = idle_rounds + 1 if result.published == 0 else 0
            await asyncio.sleep(self._poll_interval_s)


def decode_entry(fields: dict[bytes, bytes]) -> events_pb2.EventEnvelope:
    """The envelope of one stream entry (as returned by XREAD/XREADGROUP)."""
    return events_pb2.EventEnvelope.FromString(fields[STREAM_ENTRY_FIELD.encode()])
