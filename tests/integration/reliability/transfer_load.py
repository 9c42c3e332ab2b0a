"""A transfer load whose clients retry the same request until the ledger answers, and the checks that nothing
was lost or duplicated afterwards — shared by the crash and dependency-fault tests."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import grpc
import redis.asyncio as redis_asyncio

from services.kit.outbox import decode_entry
from services.ledger.events import LEDGER_EVENTS_STREAM
from tests.integration.reliability.conftest import CHANNEL_OPTIONS, Ledger
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_events_pb2,
    ledger_integrity_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)

ACCOUNTS = 6
FUNDING_MINOR = 1_000_000
AMOUNT_MAX_MINOR = 5_000
CALL_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.05
GIVE_UP_AFTER_S = 120.0
OUTBOX_DRAIN_TIMEOUT_S = 30.0
# Codes that are a decision by the ledger: the client stops retrying. Anything else (UNAVAILABLE while it is down,
# a reset connection, a deadline) means "no answer" and the same request is sent again.
ANSWERS = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


@dataclass
class Tally:
    succeeded: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> (debit, credit, amount)
    declined: set[str] = field(default_factory=set)
    retries: int = 0
    reused: list[str] = field(default_factory=list)
    sent: int = 0  # transfers the clients sent (each until answered)


async def send_until_answered(
    stub: ledger_service_pb2_grpc.LedgerServiceStub,
    ledger: Ledger,
    request: ledger_transfers_pb2.CreateTransferRequest,
    tally: Tally,
) -> grpc.StatusCode:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_AFTER_S
    while True:
        try:
            await stub.CreateTransfer(request, metadata=ledger.metadata(), timeout=CALL_TIMEOUT_S)
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            if error.code() in ANSWERS:
                return error.code()
        assert loop.time() < deadline, f"transfer {request.transfer_id} never got an answer"
        tally.retries += 1
        await asyncio.sleep(RETRY_PAUSE_S)


async def retrying_client(
    ledger: Ledger,
    accounts: list[str],
    seed: int,
    transfers: int,
    tally: Tally,
    *,
    until: asyncio.Event | None = None,
) -> None:
    """Sends ``transfers`` transfers one after the other, each until answered, and goes on while ``until`` is not
    set: a fault injected during the load then meets it however fast the ledger answers."""
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        sent = 0
        while sent < transfers or (until is not None and not until.is_set()):
            sent += 1
            tally.sent += 1
            debit, credit = rng.sample(accounts, 2)
            amount = rng.randint(1, AMOUNT_MAX_MINOR)
            request = ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=money_pb2.Money(currency="EUR", amount_minor=amount),
            )
            code = await send_until_answered(stub, ledger, request, tally)
            if code == grpc.StatusCode.OK:
                tally.succeeded[request.transfer_id] = (debit, credit, amount)
            elif code == grpc.StatusCode.ALREADY_EXISTS:
                tally.reused.append(request.transfer_id)
            else:
                tally.declined.add(request.transfer_id)


async def kill_and_restart(ledger: Ledger, load: asyncio.Future[object], *, seed: int, kills: int) -> int:
    """SIGKILLs the ledger and restarts it on its port ``kills`` times at random moments while ``load`` runs;
    returns how many kills happened before the load finished."""
    rng = random.Random(seed)
    done = 0
    while done < kills and not load.done():
        await asyncio.sleep(rng.uniform(0.4, 1.2))
        if load.done():
            break
        ledger.process.kill()
        done += 1
        await ledger.process.start()
    return done


@dataclass
class Funded:
    accounts: list[str]
    source: str  # the suspense account that funded them


async def open_and_fund(ledger: Ledger) -> Funded:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        return await _open_and_fund(ledger_service_pb2_grpc.LedgerServiceStub(channel), ledger)


async def _open_and_fund(stub: ledger_service_pb2_grpc.LedgerServiceStub, ledger: Ledger) -> Funded:
    source = str(uuid.uuid4())
    await stub.OpenAccount(
        ledger_accounts_pb2.OpenAccountRequest(
            account_id=source, kind=ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, currency="EUR"
        ),
        metadata=ledger.metadata(),
    )
    accounts = []
    for _ in range(ACCOUNTS):
        account_id = str(uuid.uuid4())
        await stub.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=account_id, kind=ledger_accounts_pb2.ACCOUNT_KIND_OPERATING, currency="EUR"
            ),
            metadata=ledger.metadata(),
        )
        await stub.CreateTransfer(
            ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=source,
                credit_account_id=account_id,
                amount=money_pb2.Money(currency="EUR", amount_minor=FUNDING_MINOR),
            ),
            metadata=ledger.metadata(),
        )
        accounts.append(account_id)
    return Funded(accounts, source)


async def posted_event_transfer_ids(redis_url: str, organization_id: str, after: str) -> Counter[str]:
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        seen: Counter[str] = Counter()
        cursor = after
        while True:
            entries = await client.xrange(LEDGER_EVENTS_STREAM, min=f"({cursor}", count=1_000)
            if not entries:
                return seen
            for entry_id, fields in entries:
                envelope = decode_entry(fields)
                if envelope.organization_id == organization_id and envelope.payload.Is(
                    ledger_events_pb2.TransferPosted.DESCRIPTOR
                ):
                    posted = ledger_events_pb2.TransferPosted()
                    envelope.payload.Unpack(posted)
                    seen[posted.transfer.transfer_id] += 1
                cursor = entry_id.decode()
    finally:
        await client.aclose()


async def stream_tail(redis_url: str) -> str:
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        last = await client.xrevrange(LEDGER_EVENTS_STREAM, count=1)
    finally:
        await client.aclose()
    return last[0][0].decode() if last else "0-0"


async def assert_nothing_lost(
    ledger: Ledger, funded: Funded, tally: Tally, redis_url: str, stream_start: str
) -> None:
    """Every transfer a client saw succeed exists once with its amount, nothing else exists, balances add up,
    invariants and the chain hold, and the outbox relayed a TransferPosted event for each."""
    assert tally.reused == [], "a retry with the same content was refused as a reused key"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        expected = dict.fromkeys(funded.accounts, FUNDING_MINOR)
        for debit, credit, amount in tally.succeeded.values():
            expected[debit] -= amount
            expected[credit] += amount
        for account_id, balance_minor in expected.items():
            reply = await stub.GetAccount(
                ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=ledger.metadata()
            )
            balance = reply.account.balance
            assert balance.posted_credits_minor - balance.posted_debits_minor == balance_minor, account_id
        invariants = await stub.CheckInvariants(
            ledger_integrity_pb2.CheckInvariantsRequest(), metadata=ledger.metadata()
        )
        assert invariants.intact, invariants.violations
        chain = await stub.VerifyChain(ledger_integrity_pb2.VerifyChainRequest(), metadata=ledger.metadata())
        assert chain.intact, chain.first_broken_sequence

    connection = await asyncpg.connect(ledger.database_url)
    try:
        rows = await connection.fetch(
            """SELECT transfer_id::text AS id, amount_minor FROM transfers
               WHERE organization_id = $1 AND debit_account_id <> $2""",
            uuid.UUID(ledger.organization_id),
            uuid.UUID(funded.source),
        )
        stored = {row["id"]: row["amount_minor"] for row in rows}
        assert set(stored) == set(tally.succeeded), "stored transfers differ from the ones clients saw succeed"
        assert all(stored[tid] == amount for tid, (_, _, amount) in tally.succeeded.items())
        assert not tally.declined & set(stored)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OUTBOX_DRAIN_TIMEOUT_S
        while await connection.fetchval("SELECT count(*) FROM outbox") > 0:
            assert loop.time() < deadline, "the outbox relay did not catch up"
            await asyncio.sleep(0.2)
    finally:
        await connection.close()

    posted = await posted_event_transfer_ids(redis_url, ledger.organization_id, stream_start)
    missing = set(tally.succeeded) - set(posted)
    assert not missing, f"{len(missing)} transfers have no TransferPosted event"
