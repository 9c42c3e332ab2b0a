"""Reversals keep their promises across crashes (issue 14).

Several clients reverse pieces of one large transfer at once, each retrying its own request (same reversal id) until
the ledger answers, while the ledger process is SIGKILLed and restarted on its port. Afterwards every reversal a
client saw succeed exists exactly once, refused ones do not exist, the original's reversed amount is their sum and
never above what it posted, and balances, invariants and the hash chain hold.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field

import asyncpg
import grpc
import pytest

from tests.integration.reliability.conftest import CHANNEL_OPTIONS, Ledger
from tests.integration.reliability.transfer_load import (
    ANSWERS,
    CALL_TIMEOUT_S,
    GIVE_UP_AFTER_S,
    RETRY_PAUSE_S,
    kill_and_restart,
)
from tests.support.soak import scaled
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_integrity_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)

pytestmark = pytest.mark.integration

KILLS = scaled(2, 8)
CLIENTS = 6
ORIGINAL_MINOR = 60_000
PIECE_MAX_MINOR = 900  # small enough that the clients reach the original's end only after a few crashes


@dataclass
class ReversalTally:
    succeeded: dict[str, int] = field(default_factory=dict)  # reversal id -> amount
    refused: dict[str, str] = field(default_factory=dict)  # reversal id -> reason
    retries: int = 0


async def _reverse_until_answered(
    stub: ledger_service_pb2_grpc.LedgerServiceStub,
    ledger: Ledger,
    request: ledger_transfers_pb2.ReverseTransferRequest,
    tally: ReversalTally,
) -> grpc.aio.AioRpcError | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP_AFTER_S
    while True:
        try:
            await stub.ReverseTransfer(request, metadata=ledger.metadata(), timeout=CALL_TIMEOUT_S)
            return None
        except grpc.aio.AioRpcError as error:
            if error.code() in ANSWERS:
                return error
        assert loop.time() < deadline, f"reversal {request.transfer_id} never got an answer"
        tally.retries += 1
        await asyncio.sleep(RETRY_PAUSE_S)


async def _reversing_client(
    ledger: Ledger, original_id: str, seed: int, tally: ReversalTally, crashes_done: asyncio.Event
) -> None:
    """Reverses random pieces until the original is used up (and the crashes are over)."""
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        exhausted = False
        while not (exhausted and crashes_done.is_set()):
            amount = rng.randint(1, PIECE_MAX_MINOR)
            request = ledger_transfers_pb2.ReverseTransferRequest(
                transfer_id=str(uuid.uuid4()),
                original_transfer_id=original_id,
                amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                reason=ledger_transfers_pb2.REVERSAL_REASON_ERROR_CORRECTION,
            )
            error = await _reverse_until_answered(stub, ledger, request, tally)
            if error is None:
                tally.succeeded[request.transfer_id] = amount
                continue
            tally.refused[request.transfer_id] = f"{error.code().name} {error.details()}"
            exhausted = True
            await asyncio.sleep(RETRY_PAUSE_S)


async def _original(ledger: Ledger) -> tuple[str, str, str]:
    """A payer who paid a payee ORIGINAL_MINOR: (payer, payee, transfer id)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        accounts = []
        for kind in (ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING):
            account_id = str(uuid.uuid4())
            await stub.OpenAccount(
                ledger_accounts_pb2.OpenAccountRequest(account_id=account_id, kind=kind, currency="EUR"),
                metadata=ledger.metadata(),
            )
            accounts.append(account_id)
        payer, payee = accounts
        paid = await stub.CreateTransfer(
            ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=payer,
                credit_account_id=payee,
                amount=money_pb2.Money(currency="EUR", amount_minor=ORIGINAL_MINOR),
            ),
            metadata=ledger.metadata(),
        )
    return payer, payee, paid.transfer.transfer_id


async def test_reversals_survive_sigkill_exactly_once_and_never_exceed_the_original(ledger: Ledger) -> None:
    payer, payee, original_id = await _original(ledger)
    tally = ReversalTally()
    crashes_done = asyncio.Event()
    load = asyncio.gather(
        *(_reversing_client(ledger, original_id, seed, tally, crashes_done) for seed in range(CLIENTS))
    )
    try:
        kills = await kill_and_restart(ledger, load, seed=14, kills=KILLS)
    finally:
        crashes_done.set()
    await load
    assert kills == KILLS, "the reversals were used up before every crash happened"
    assert tally.retries > 0, "no call was interrupted: the crashes did not hit the load"
    assert all(reason.startswith("FAILED_PRECONDITION") for reason in tally.refused.values()), tally.refused
    reversed_minor = sum(tally.succeeded.values())
    assert ORIGINAL_MINOR - PIECE_MAX_MINOR < reversed_minor <= ORIGINAL_MINOR

    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.process.port}", options=CHANNEL_OPTIONS) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        shown = await stub.GetTransfer(
            ledger_transfers_pb2.GetTransferRequest(transfer_id=original_id), metadata=ledger.metadata()
        )
        assert shown.transfer.reversed_amount.amount_minor == reversed_minor
        assert shown.transfer.posted_amount.amount_minor == ORIGINAL_MINOR
        for account_id, balance_minor in (
            (payer, reversed_minor - ORIGINAL_MINOR),
            (payee, ORIGINAL_MINOR - reversed_minor),
        ):
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
            """SELECT t.transfer_id::text AS id, t.amount_minor, r.transfer_id IS NOT NULL AS recorded
               FROM transfers t LEFT JOIN transfer_reversals r
                 ON r.organization_id = t.organization_id AND r.transfer_id = t.transfer_id
               WHERE t.organization_id = $1 AND t.reversal_of_transfer_id = $2""",
            uuid.UUID(ledger.organization_id),
            uuid.UUID(original_id),
        )
    finally:
        await connection.close()
    stored = {row["id"]: row["amount_minor"] for row in rows}
    assert stored == tally.succeeded, "stored reversals differ from the ones clients saw succeed"
    assert all(row["recorded"] for row in rows), "a reversal transfer without its reversal record"
