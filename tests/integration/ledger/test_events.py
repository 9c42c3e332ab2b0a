"""Events: a posted transfer's event reaches the Redis Stream through the outbox relay, in per-account order, and
the relay catches up after a Redis outage (a TCP proxy in front of the real Redis is closed and reopened)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis_asyncio

from services.kit.outbox import OutboxRelay, decode_entry
from services.ledger.events import LEDGER_EVENTS_STREAM
from tests.integration.ledger.conftest import LedgerHarness
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_events_pb2
from wallet.ledger.v1 import ledger_fx_pb2 as fx_pb
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb

pytestmark = pytest.mark.integration

WAIT_S = 15.0


class RedisProxy:
    """Forwards TCP to Redis; ``close`` is an outage, ``open`` brings the same port back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, upstream_writer}
        tasks = {
            asyncio.create_task(_pipe(reader, upstream_writer)),
            asyncio.create_task(_pipe(upstream_reader, writer)),
        }
        self._pipes |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes -= tasks


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


STREAM_TAIL_MAX = 10_000


async def _posted_events(
    client: redis_asyncio.Redis, transfer_ids: set[str]
) -> list[ledger_events_pb2.TransferPosted]:
    found: dict[str, ledger_events_pb2.TransferPosted] = {}
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while len(found) < len(transfer_ids) and asyncio.get_running_loop().time() < deadline:
        # Only the stream's tail: the Redis is shared with other test runs and benches, so the whole stream can be
        # too long to read within the client's timeout.
        entries = list(reversed(await client.xrevrange(LEDGER_EVENTS_STREAM, "+", "-", count=STREAM_TAIL_MAX)))
        ordered: list[ledger_events_pb2.TransferPosted] = []
        for _, fields in entries:
            envelope = decode_entry(fields)
            if envelope.event_type != ledger_events_pb2.TransferPosted.DESCRIPTOR.full_name:
                continue
            posted = ledger_events_pb2.TransferPosted()
            envelope.payload.Unpack(posted)
            if posted.transfer.transfer_id in transfer_ids:
                ordered.append(posted)
        found = {p.transfer.transfer_id: p for p in ordered}
        if len(found) < len(transfer_ids):
            await asyncio.sleep(0.1)
    return ordered if len(found) == len(transfer_ids) else []


@pytest.fixture
async def stream_client(ledger: LedgerHarness) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(ledger.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_posted_transfer_event_arrives_in_account_order_and_after_an_outage(
    ledger: LedgerHarness, stream_client: redis_asyncio.Redis
) -> None:
    target = urlsplit(ledger.redis_url)
    proxy = RedisProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.open()
    relay_redis = redis_asyncio.Redis(
        host="127.0.0.1",
        port=proxy.port,
        db=int(target.path.strip("/") or 0),
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )
    relay = asyncio.create_task(
        OutboxRelay("ledger-test", ledger.app.runtime.pool, relay_redis, poll_interval_s=0.05).run()
    )
    try:
        account, other = await ledger.open(), await ledger.open()
        await ledger.fund(account, 1_000)
        first = [await ledger.transfer(account, other, n) for n in (1, 2, 3)]
        events = await _posted_events(stream_client, {t.transfer_id for t in first})
        assert [e.transfer.transfer_id for e in events] == [t.transfer_id for t in first]
        assert [e.sequence for e in events] == sorted(e.sequence for e in events)
        assert events[0].posted_amount.amount_minor == 1

        await proxy.close()
        during = [await ledger.transfer(account, other, n) for n in (4, 5)]
        async with ledger.app.runtime.pool.acquire() as connection:
            waiting = await connection.fetchval("SELECT count(*) FROM outbox")
        assert waiting >= len(during)
        await proxy.open()
        caught_up = await _posted_events(stream_client, {t.transfer_id for t in during})
        assert [e.transfer.transfer_id for e in caught_up] == [t.transfer_id for t in during]
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await relay_redis.aclose()
        with contextlib.suppress(AssertionError):
            await proxy.close()


async def test_account_and_hold_facts_are_written_to_the_outbox_in_order(ledger: LedgerHarness) -> None:
    account, other = await ledger.open(), await ledger.open()
    await ledger.fund(account, 10)
    await ledger.transfer(account, other, 10, pending=True)
    await ledger.stub.FreezeAccount(
        accounts_pb.FreezeAccountRequest(account_id=account, reason="check", request_id=str(uuid.uuid4())),
        metadata=ledger.auth(),
    )
    async with ledger.app.runtime.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT event_id, envelope FROM outbox WHERE partition_key = $1 ORDER BY id", account
        )
    types = [decode_entry({b"event": bytes(r["envelope"])}).event_type.rsplit(".", 1)[1] for r in rows]
    assert types == ["AccountOpened", "TransferPending", "AccountFrozen"]
    assert len({r["event_id"] for r in rows}) == len(rows)


async def _events_of(ledger: LedgerHarness, partition_key: str) -> list[tuple[str, Any]]:
    async with ledger.app.runtime.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT envelope FROM outbox WHERE partition_key = $1 ORDER BY id", partition_key
        )
    envelopes = [decode_entry({b"event": bytes(r["envelope"])}) for r in rows]
    return [(e.event_type.rsplit(".", 1)[1], e) for e in envelopes]


async def test_fx_rate_changes_are_audited_and_published_once(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    first = fx_pb.SetFxRateRequest(
        base_currency="EUR", quote_currency="USD", rate="1.0850", request_id=str(uuid.uuid4())
    )
    await ledger.stub.SetFxRate(first, metadata=ledger.auth(org=org))
    await ledger.stub.SetFxRate(first, metadata=ledger.auth(org=org))  # a replay changes nothing
    second = fx_pb.SetFxRateRequest(
        base_currency="EUR", quote_currency="USD", rate="1.09", request_id=str(uuid.uuid4())
    )
    await ledger.stub.SetFxRate(second, metadata=ledger.auth(org=org))

    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id="EUR/USD"), metadata=ledger.auth(org=org)
    )
    changes = sorted((e.details["old_rate"], e.details["new_rate"]) for e in audit.audit_events)
    assert changes == [("", "1.085"), ("1.085", "1.09")]
    assert {e.method for e in audit.audit_events} == {"SetFxRate"}

    events = await _events_of(ledger, org)
    assert [name for name, _ in events] == ["FxRateSet", "FxRateSet"]
    rates = []
    for _, envelope in events:
        payload = ledger_events_pb2.FxRateSet()
        envelope.payload.Unpack(payload)
        rates.append((payload.base_currency, payload.quote_currency, payload.rate))
    assert rates == [("EUR", "USD", "1.085"), ("EUR", "USD", "1.09")]


async def test_a_sealed_block_is_published_with_its_merkle_root(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    account, other = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(account, 10, org=org)
    await ledger.transfer(account, other, 3, org=org)
    assert await ledger.app.integrity.seal_pending() >= 1
    sealed = [e for name, e in await _events_of(ledger, org) if name == "ChainBlockSealed"]
    assert len(sealed) == 1
    block = ledger_events_pb2.ChainBlockSealed()
    sealed[0].payload.Unpack(block)
    async with ledger.app.runtime.pool.acquire() as connection:
        stored = await connection.fetchrow(
            "SELECT block_number, first_sequence, last_sequence, merkle_root FROM chain_blocks"
            " WHERE organization_id = $1",
            uuid.UUID(org),
        )
    assert stored is not None
    assert (block.block_number, block.first_sequence, block.last_sequence) == (1, 1, stored["last_sequence"])
    assert block.merkle_root == bytes(stored["merkle_root"])
