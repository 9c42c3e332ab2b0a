"""The kit's stream consumer against real Redis: a batch's handled entries are acknowledged (in one XACK) and an entry
whose handler failed stays pending for redelivery."""

import uuid
from typing import Any

import pytest
import redis.asyncio as redis_asyncio

from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.stream_consumer import ConsumerSettings, StreamConsumer
from wallet.common.v1 import events_pb2
from wallet.ledger.v1 import ledger_events_pb2

pytestmark = pytest.mark.integration


async def test_handled_entries_are_acknowledged_and_a_failed_one_stays_pending(
    redis_client: redis_asyncio.Redis,
) -> None:
    stream = f"test.consumer.{uuid.uuid4().hex}"
    settings = ConsumerSettings(stream=stream, group="test-group", start_id="0")
    seen: list[str] = []
    poison = "account-3"

    async def handle(envelope: events_pb2.EventEnvelope) -> None:
        frozen = ledger_events_pb2.AccountFrozen()
        envelope.payload.Unpack(frozen)
        seen.append(frozen.account_id)
        if frozen.account_id == poison:
            raise RuntimeError("this one fails")

    for index in range(6):
        envelope = make_envelope(
            event_type_payload=ledger_events_pb2.AccountFrozen(account_id=f"account-{index}"),
            organization_id="org",
            partition_key="p",
        )
        await redis_client.xadd(stream, {STREAM_ENTRY_FIELD: envelope.SerializeToString()})
    consumer = StreamConsumer(redis_client, settings, handle)
    await consumer.ensure_group()
    try:
        assert await consumer.consume_once() == 5
        assert seen == [f"account-{index}" for index in range(6)]
        pending = await redis_client.xpending_range(stream, settings.group, min="-", max="+", count=10)
        assert len(pending) == 1, "only the entry whose handler failed awaits redelivery"
        entry: Any = await redis_client.xrange(stream, min=pending[0]["message_id"], max=pending[0]["message_id"])
        failed = events_pb2.EventEnvelope.FromString(entry[0][1][STREAM_ENTRY_FIELD.encode()])
        frozen = ledger_events_pb2.AccountFrozen()
        failed.payload.Unpack(frozen)
        assert frozen.account_id == poison
        assert await consumer.consume_once() == 0, "nothing new; the failed entry is not idle long enough to claim"
    finally:
        await redis_client.delete(stream)
