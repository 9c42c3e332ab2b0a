"""Transfers through the real server: idempotency, declines with numbers, holds, races, concurrency, bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2

from services.kit.status import ErrorDetails
from services.ledger.caller import Caller
from services.ledger.domain_accounts import Money
from services.ledger.service_transfers import TransferRequest
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as pb

pytestmark = pytest.mark.integration


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _request(debit: str, credit: str, amount_minor: int, **fields: object) -> pb.CreateTransferRequest:
    return pb.CreateTransferRequest(
        transfer_id=str(uuid.uuid4()),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
        **fields,  # type: ignore[arg-type]
    )


async def _count_rows(ledger: LedgerHarness, table: str) -> int:
    async with ledger.app.runtime.pool.acquire() as connection:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 -- test-only table names


async def test_transfer_posts_and_replays_and_refuses_changed_content(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    request = _request(payer, payee, 250, reference="order-1")
    first = await ledger.stub.CreateTransfer(request, metadata=ledger.auth())
    assert first.transfer.status == pb.TRANSFER_STATUS_POSTED
    assert first.transfer.sequence > 0
    again = await ledger.stub.CreateTransfer(request, metadata=ledger.auth())
    assert again.transfer == first.transfer
    assert (await ledger.balance(payer)).available.amount_minor == 750
    request.amount.amount_minor = 251
    details = await _error(ledger.stub.CreateTransfer(request, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert details.metadata["field"] == "amount.amount_minor"
    assert (await ledger.balance(payer)).available.amount_minor == 750


async def test_replay_after_commit_without_reply_returns_the_original(ledger: LedgerHarness) -> None:
    """The first call commits inside the service but its reply is lost (we call the use case directly and drop
    the result); the client's retry over gRPC gets the committed transfer, and nothing is applied twice."""
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 100)
    transfer_id = str(uuid.uuid4())
    caller = Caller(uuid.UUID(ledger.organization_id), "maker", None)
    committed = await ledger.app.transfers.create_transfer(
        caller, TransferRequest(transfer_id, payer, payee, Money("EUR", 60), False, 0, "")
    )
    retry = await ledger.stub.CreateTransfer(
        pb.CreateTransferRequest(
            transfer_id=transfer_id,
            debit_account_id=payer,
            credit_account_id=payee,
            amount=money_pb2.Money(currency="EUR", amount_minor=60),
        ),
        metadata=ledger.auth(),
    )
    assert retry.transfer.sequence == committed.sequence
    assert (await ledger.balance(payer)).posted_debits_minor == 60


async def test_declines_carry_reasons_and_numbers(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 100)
    insufficient = await _error(ledger.stub.CreateTransfer(_request(payer, payee, 101), metadata=ledger.auth()))
    assert insufficient.code == grpc.StatusCode.FAILED_PRECONDITION
    assert insufficient.reason == "INSUFFICIENT_FUNDS"
    assert insufficient.metadata["available_minor"] == "100"
    usd = await ledger.open("USD")
    mismatch = await _error(ledger.stub.CreateTransfer(_request(payer, usd, 1), metadata=ledger.auth()))
    assert mismatch.reason == "CURRENCY_MISMATCH"
    same = await _error(ledger.stub.CreateTransfer(_request(payer, payer, 1), metadata=ledger.auth()))
    assert same.reason == "SAME_ACCOUNT"
    assert same.code == grpc.StatusCode.INVALID_ARGUMENT
    missing = await _error(ledger.stub.CreateTransfer(_request(payer, str(uuid.uuid4()), 1), metadata=ledger.auth()))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    other_tenant = await _error(
        ledger.stub.CreateTransfer(_request(payer, payee, 1), metadata=ledger.auth(org=str(uuid.uuid4())))
    )
    assert other_tenant.code == grpc.StatusCode.NOT_FOUND


async def test_bad_input_is_invalid_argument_and_writes_nothing(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    before = await _count_rows(ledger, "transfers")
    cases = [
        (_request(payer, payee, 0), "amount.amount_minor"),
        (_request(payer, payee, -5), "amount.amount_minor"),
        (_request(payer, payee, 2**62), "amount.amount_minor"),
        (_request("nope", payee, 1), "debit_account_id"),
        (pb.CreateTransferRequest(debit_account_id=payer, credit_account_id=payee), "transfer_id"),
        (_request(payer, payee, 1, hold_timeout=duration_pb2.Duration(seconds=60)), "hold_timeout"),
    ]
    for request, field in cases:
        details = await _error(ledger.stub.CreateTransfer(request, metadata=ledger.auth()))
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in {v.field for v in details.field_violations}
    bad_currency = _request(payer, payee, 1)
    bad_currency.amount.currency = "XYZ"
    unknown = await _error(ledger.stub.CreateTransfer(bad_currency, metadata=ledger.auth()))
    assert unknown.reason == "UNKNOWN_CURRENCY"
    page = await _error(ledger.stub.ListTransfers(pb.ListTransfersRequest(page_size=-1), metadata=ledger.auth()))
    assert page.code == grpc.StatusCode.INVALID_ARGUMENT
    assert await _count_rows(ledger, "transfers") == before


async def test_hold_post_partial_releases_the_rest(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    hold = await ledger.transfer(payer, payee, 400, pending=True)
    assert hold.status == pb.TRANSFER_STATUS_PENDING
    balance = await ledger.balance(payer)
    assert balance.pending_debits_minor == 400
    assert balance.available.amount_minor == 600
    too_much = await _error(
        ledger.stub.PostPendingTransfer(
            pb.PostPendingTransferRequest(
                transfer_id=hold.transfer_id,
                amount=money_pb2.Money(currency="EUR", amount_minor=401),
                request_id=str(uuid.uuid4()),
            ),
            metadata=ledger.auth(),
        )
    )
    assert too_much.reason == "HOLD_AMOUNT_EXCEEDED"
    post = pb.PostPendingTransferRequest(
        transfer_id=hold.transfer_id,
        amount=money_pb2.Money(currency="EUR", amount_minor=150),
        request_id=str(uuid.uuid4()),
    )
    posted = await ledger.stub.PostPendingTransfer(post, metadata=ledger.auth())
    replay = await ledger.stub.PostPendingTransfer(post, metadata=ledger.auth())
    assert posted.transfer.status == replay.transfer.status == pb.TRANSFER_STATUS_POSTED
    post.amount.amount_minor = 151
    changed = await _error(ledger.stub.PostPendingTransfer(post, metadata=ledger.auth()))
    assert changed.reason == "IDEMPOTENCY_KEY_REUSED"
    assert changed.metadata["field"] == "amount"
    assert posted.transfer.posted_amount.amount_minor == 150
    balance = await ledger.balance(payer)
    assert balance.pending_debits_minor == 0
    assert balance.posted_debits_minor == 150
    assert balance.available.amount_minor == 850
    void = await _error(
        ledger.stub.VoidPendingTransfer(
            pb.VoidPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4())),
            metadata=ledger.auth(),
        )
    )
    assert void.reason == "HOLD_NOT_PENDING"


async def test_concurrent_post_and_void_exactly_one_wins(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 10_000)
    for _ in range(5):
        hold = await ledger.transfer(payer, payee, 100, pending=True)
        results = await asyncio.gather(
            ledger.stub.PostPendingTransfer(
                pb.PostPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4())),
                metadata=ledger.auth(),
            ),
            ledger.stub.VoidPendingTransfer(
                pb.VoidPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4())),
                metadata=ledger.auth(),
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(winners) == 1
        assert [d.reason for d in losers] == ["HOLD_NOT_PENDING"]
    balance = await ledger.balance(payer)
    assert balance.pending_debits_minor == 0


async def test_expiry_sweeper_expires_each_hold_exactly_once(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    hold = await ledger.transfer(payer, payee, 300, pending=True, hold_timeout=duration_pb2.Duration(seconds=1))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    swept = await asyncio.gather(*(ledger.app.transfers.expire_due_holds(later) for _ in range(3)))
    async with ledger.app.runtime.pool.acquire() as connection:
        entries = await connection.fetchval(
            "SELECT count(*) FROM chain_entries WHERE transfer_id = $1 AND entry_kind = 5",
            uuid.UUID(hold.transfer_id),
        )
    assert entries == 1
    assert sum(swept) >= 1
    got = await ledger.stub.GetTransfer(pb.GetTransferRequest(transfer_id=hold.transfer_id), metadata=ledger.auth())
    assert got.transfer.status == pb.TRANSFER_STATUS_EXPIRED
    balance = await ledger.balance(payer)
    assert balance.pending_debits_minor == 0
    assert balance.available.amount_minor == 1_000


async def test_fifty_concurrent_transfers_funded_for_twenty_five(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 25 * 40)
    results = await asyncio.gather(
        *(ledger.stub.CreateTransfer(_request(payer, payee, 40), metadata=ledger.auth()) for _ in range(50)),
        return_exceptions=True,
    )
    posted = [r for r in results if not isinstance(r, BaseException)]
    declined = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(posted) == 25
    assert {d.reason for d in declined} == {"INSUFFICIENT_FUNDS"}
    balance = await ledger.balance(payer)
    assert balance.available.amount_minor == 0
    assert balance.posted_debits_minor == balance.posted_credits_minor == 1_000


async def test_customer_may_debit_only_own_wallet(ledger: LedgerHarness) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    alice_wallet = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=alice)
    bob_wallet = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=bob)
    await ledger.fund(bob_wallet, 100)
    stolen = await _error(
        ledger.stub.CreateTransfer(_request(bob_wallet, alice_wallet, 10), metadata=ledger.customer_auth(alice))
    )
    assert stolen.code == grpc.StatusCode.NOT_FOUND
    paid = await ledger.stub.CreateTransfer(
        _request(bob_wallet, alice_wallet, 10), metadata=ledger.customer_auth(bob)
    )
    seen = await ledger.stub.GetTransfer(
        pb.GetTransferRequest(transfer_id=paid.transfer.transfer_id), metadata=ledger.customer_auth(alice)
    )
    assert seen.transfer.transfer_id == paid.transfer.transfer_id
    stranger = await _error(
        ledger.stub.GetTransfer(
            pb.GetTransferRequest(transfer_id=paid.transfer.transfer_id),
            metadata=ledger.customer_auth(str(uuid.uuid4())),
        )
    )
    assert stranger.code == grpc.StatusCode.NOT_FOUND


async def test_customer_may_finish_only_holds_on_its_own_money(ledger: LedgerHarness) -> None:
    payer_id, payee_id = str(uuid.uuid4()), str(uuid.uuid4())
    payer = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=payer_id)
    payee = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=payee_id)
    await ledger.fund(payer, 100)
    hold = await ledger.transfer(payer, payee, 40, pending=True)
    capture = pb.PostPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4()))
    denied = await _error(ledger.stub.PostPendingTransfer(capture, metadata=ledger.customer_auth(payee_id)))
    assert denied.code == grpc.StatusCode.NOT_FOUND
    voided = await ledger.stub.VoidPendingTransfer(
        pb.VoidPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4())),
        metadata=ledger.customer_auth(payer_id),
    )
    assert voided.transfer.status == pb.TRANSFER_STATUS_VOIDED
