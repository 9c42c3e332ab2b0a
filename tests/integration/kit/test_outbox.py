import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis_asyncio

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


def _event(partition: str) -> ledger_events_pb2.AccountFrozen:
    return ledger_events_pb2.AccountFrozen(account_id=partition)


async def test_committed_events_are_relayed_in_order_and_removed(
    pool: asyncpg.Pool, redis_client: redis_asyncio.Redis
) -> None:
    stream = f"test.outbox.{uuid.uuid4().hex}"
    sent = []
    async with pool.acquire() as connection:
        for partition in ("a", "b", "a"):
            async with connection.transaction():
                envelope = make_envelope(
                    event_type_payload=_event(partition), organization_id="org", partition_key=partition
                )
                await enqueue(connection, stream, envelope)
                sent.append(envelope.event_id)
        with pytest.raises(RuntimeError):  # noqa: PT012 - the failure must happen inside the transaction
            async with connection.transaction():
                await enqueue(
                    connection,
                    stream,
                    make_envelope(event_type_payload=_event("x"), organization_id="org", partition_key="x"),
                )
                raise RuntimeError("the fact's transaction failed")
        result = await OutboxRelay("test", pool, redis_client).relay_once(connection)
        assert result.published == 3
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0
    entries = await redis_client.xrange(stream)
    envelopes = [decode_entry(fields) for _, fields in entries]
    assert [e.event_id for e in envelopes] == sent
    assert envelopes[0].event_type == "wallet.ledger.v1.AccountFrozen"
    payload = ledger_events_pb2.AccountFrozen()
    assert envelopes[0].payload.Unpack(payload)
    assert payload.account_id == "a"
    await redis_client.delete(stream)


async def test_redis_outage_keeps_events_until_it_returns(
    pool: asyncpg.Pool, redis_client: redis_asyncio.Redis
) -> None:
    stream = f"test.outbox.{uuid.uuid4().hex}"
    dead_redis = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    async with pool.acquire() as connection:
        async with connection.transaction():
            await enqueue(
                connection,
                stream,
                make_envelope(event_type_payload=_event("a"), organization_id="o", partition_key="a"),
            )
        with pytest.raises(redis_asyncio.ConnectionError):
            await OutboxRelay("test", pool, dead_redis).relay_once(connection)
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 1
        assert (await OutboxRelay("test", pool, redis_client).relay_once(connection)).published == 1
    await dead_redis.aclose()
    assert await redis_client.xlen(stream) == 1
    await redis_client.delete(stream)


async def test_enqueue_outside_a_transaction_is_a_bug(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        with pytest.raises(AssertionError):
            await enqueue(
                connection, "s", make_envelope(event_type_payload=_event("a"), organization_id="o", partition_key="a")
            )
