"""Trace context through the outbox: an event written inside a span carries its traceparent; the relay round is a
PRODUCER span linked to it; a consumer handles the event in a new trace linked to it, and reports its lag."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from services.kit.event_consumer import consuming, link_to_producer
from services.kit.outbox import OUTBOX_TABLE_SQL, OutboxRelay, decode_entry, enqueue, make_envelope
from wallet.ledger.v1 import ledger_events_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert created is not None
    await created.execute(OUTBOX_TABLE_SQL)
    try:
        yield created
    finally:
        await created.close()


async def test_event_carries_the_trace_and_consumer_links_back(
    pool: asyncpg.Pool, redis_client: redis_asyncio.Redis, span_exporter: InMemorySpanExporter
) -> None:
    stream = f"test.traced.{uuid.uuid4().hex}"
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("CreateTransfer") as producer:
        envelope = make_envelope(
            event_type_payload=ledger_events_pb2.AccountFrozen(account_id="a"),
            organization_id="org",
            partition_key="a",
        )
        async with pool.acquire() as connection, connection.transaction():
            await enqueue(connection, stream, envelope)
    producer_context = producer.get_span_context()
    assert envelope.traceparent.startswith(f"00-{producer_context.trace_id:032x}-{producer_context.span_id:016x}-")

    async with pool.acquire() as connection:
        assert (await OutboxRelay("test", pool, redis_client).relay_once(connection)).published == 1
    relay = [span for span in span_exporter.get_finished_spans() if span.name == "publish outbox"][-1]
    assert relay.kind is SpanKind.PRODUCER
    assert [link.context.span_id for link in relay.links] == [producer_context.span_id]
    assert relay.context.trace_id != producer_context.trace_id

    (_, fields), *_ = await redis_client.xrange(stream)
    received = decode_entry(fields)
    with tracer.start_as_current_span("consumer loop"), consuming("test-group", stream, received):
        pass
    handled = [span for span in span_exporter.get_finished_spans() if span.name == f"process {stream}"][-1]
    assert handled.kind is SpanKind.CONSUMER
    assert handled.parent is None  # a new trace, not a child of whatever the loop ran in
    assert [link.context.span_id for link in handled.links] == [producer_context.span_id]
    attributes = dict(handled.attributes or {})
    assert attributes["messaging.destination.name"] == stream
    assert attributes["messaging.message.id"] == received.event_id
    lag = REGISTRY.get_sample_value("wallet_event_consumer_lag_seconds", {"consumer": "test-group", "stream": stream})
    assert lag is not None
    assert lag >= 0
    await redis_client.delete(stream)


@pytest.mark.parametrize("traceparent", ["", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_no_link_without_a_valid_traceparent(traceparent: str) -> None:
    assert link_to_producer(traceparent) == []


async def test_an_idle_relay_poll_leaves_no_spans(
    pool: asyncpg.Pool, redis_client: redis_asyncio.Redis, span_exporter: InMemorySpanExporter
) -> None:
    before = len(span_exporter.get_finished_spans())
    async with pool.acquire() as connection:
        for _ in range(3):
            assert (await OutboxRelay("test", pool, redis_client).relay_once(connection)).published == 0
        await connection.fetchval("SELECT 1")  # instrumentation is back on after the poll
    new_spans = span_exporter.get_finished_spans()[before:]
    statements = [str((span.attributes or {}).get("db.statement")) for span in new_spans]
    assert "SELECT 1" in statements
    assert not [statement for statement in statements if "outbox" in statement]
