"""Invoices through the real server: create and replay, line items, pay exactly once (also under concurrent
payments), idempotent pay, overdue and cancelled invoices, foreign invoices, keyset pages and the status filter."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_invoices_pb2 as pb
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency="EUR", amount_minor=amount_minor)


def _due(seconds: int = 3600) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))
    return stamp


def _create(payee: str, amount_minor: int, **fields: object) -> pb.CreateInvoiceRequest:
    return pb.CreateInvoiceRequest(
        invoice_id=str(uuid.uuid4()),
        payee_account_id=payee,
        amount=_eur(amount_minor),
        due_at=_due(),
        reference="INV-1",
        **fields,  # type: ignore[arg-type]
    )


def _pay(invoice_id: str, debit: str) -> pb.PayInvoiceRequest:
    return pb.PayInvoiceRequest(transfer_id=str(uuid.uuid4()), invoice_id=invoice_id, debit_account_id=debit)


async def _sql(ledger: LedgerHarness, statement: str, *args: object) -> None:
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(statement, *args)


async def test_create_with_line_items_replays_and_refuses_changed_content(ledger: LedgerHarness) -> None:
    payee = await ledger.open()
    request = _create(
        payee,
        1_250,
        line_items=[
            pb.InvoiceLineItem(description="widget", quantity=3, unit_amount=_eur(250)),
            pb.InvoiceLineItem(description="delivery", quantity=1, unit_amount=_eur(500)),
        ],
    )
    created = await ledger.stub.CreateInvoice(request, metadata=ledger.auth())
    invoice = created.invoice
    assert invoice.status == pb.INVOICE_STATUS_OPEN
    assert [item.amount.amount_minor for item in invoice.line_items] == [750, 500]
    again = await ledger.stub.CreateInvoice(request, metadata=ledger.auth())
    assert again.invoice == invoice
    fetched = await ledger.stub.GetInvoice(
        pb.GetInvoiceRequest(invoice_id=invoice.invoice_id), metadata=ledger.auth()
    )
    assert fetched.invoice == invoice
    request.reference = "INV-2"
    reused = await _error(ledger.stub.CreateInvoice(request, metadata=ledger.auth()))
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    assert reused.metadata["field"] == "reference"


async def test_bad_invoices_are_invalid_argument_with_field_violations(ledger: LedgerHarness) -> None:
    payee = await ledger.open()
    past = _create(payee, 100)
    past.due_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    cases = [
        (
            _create(payee, 100, line_items=[pb.InvoiceLineItem(description="a", quantity=1, unit_amount=_eur(99))]),
            "line_items",
        ),
        (
            _create(payee, 100, line_items=[pb.InvoiceLineItem(description="a", quantity=0, unit_amount=_eur(100))]),
            "line_items[0].quantity",
        ),
        (
            _create(payee, 100, line_items=[pb.InvoiceLineItem(description="", quantity=1, unit_amount=_eur(100))]),
            "line_items[0].description",
        ),
        (_create(payee, 0), "amount.amount_minor"),
        (past, "due_at"),
        (_create("nope", 100), "payee_account_id"),
    ]
    for request, field in cases:
        details = await _error(ledger.stub.CreateInvoice(request, metadata=ledger.auth()))
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in {v.field for v in details.field_violations}, field
    usd = await ledger.open("USD")
    mismatch = await _error(ledger.stub.CreateInvoice(_create(usd, 100), metadata=ledger.auth()))
    assert mismatch.reason == "CURRENCY_MISMATCH"


async def test_pay_moves_money_once_and_replays(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    invoice = (await ledger.stub.CreateInvoice(_create(payee, 400), metadata=ledger.auth())).invoice
    request = _pay(invoice.invoice_id, payer)
    paid = await ledger.stub.PayInvoice(request, metadata=ledger.auth())
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    assert paid.invoice.paid_by_transfer_id == request.transfer_id
    assert paid.transfer.kind == transfers_pb.TRANSFER_KIND_INVOICE_PAYMENT
    assert paid.transfer.invoice_id == invoice.invoice_id
    assert paid.transfer.reference == "INV-1"
    replay = await ledger.stub.PayInvoice(request, metadata=ledger.auth())
    assert replay == paid
    read = await ledger.stub.GetTransfer(
        transfers_pb.GetTransferRequest(transfer_id=request.transfer_id), metadata=ledger.auth()
    )
    assert (
        read.transfer.invoice_id == invoice.invoice_id
    )  # the link survives a plain read, not only PayInvoice's reply
    listed = await ledger.stub.ListTransfers(
        transfers_pb.ListTransfersRequest(account_id=payer), metadata=ledger.auth()
    )
    assert [t.invoice_id for t in listed.transfers if t.transfer_id == request.transfer_id] == [invoice.invoice_id]
    second = await _error(ledger.stub.PayInvoice(_pay(invoice.invoice_id, payer), metadata=ledger.auth()))
    assert second.code == grpc.StatusCode.FAILED_PRECONDITION
    assert second.reason == "INVOICE_NOT_PAYABLE"
    assert second.metadata["status"] == "PAID"
    assert (await ledger.balance(payer)).available.amount_minor == 600
    assert (await ledger.balance(payee)).posted_credits_minor == 400
    cancel = await _error(
        ledger.stub.CancelInvoice(
            pb.CancelInvoiceRequest(invoice_id=invoice.invoice_id, request_id=str(uuid.uuid4())),
            metadata=ledger.auth(),
        )
    )
    assert cancel.reason == "INVOICE_NOT_OPEN"


async def test_concurrent_payments_exactly_one_succeeds(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 10_000)
    invoice = (await ledger.stub.CreateInvoice(_create(payee, 700), metadata=ledger.auth())).invoice
    calls = [ledger.stub.PayInvoice(_pay(invoice.invoice_id, payer), metadata=ledger.auth()) for _ in range(12)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    successes = [r for r in results if isinstance(r, pb.PayInvoiceResponse)]
    failures = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(successes) == 1
    assert len(failures) == 11
    assert {f.reason for f in failures} == {"INVOICE_NOT_PAYABLE"}
    assert (await ledger.balance(payer)).posted_debits_minor == 700
    assert (await ledger.balance(payee)).posted_credits_minor == 700


async def test_declined_payment_leaves_the_invoice_open(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 100)
    invoice = (await ledger.stub.CreateInvoice(_create(payee, 500), metadata=ledger.auth())).invoice
    declined = await _error(ledger.stub.PayInvoice(_pay(invoice.invoice_id, payer), metadata=ledger.auth()))
    assert declined.reason == "INSUFFICIENT_FUNDS"
    await ledger.fund(payer, 400)
    paid = await ledger.stub.PayInvoice(_pay(invoice.invoice_id, payer), metadata=ledger.auth())
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID


async def test_overdue_and_cancelled_invoices_are_not_payable(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    overdue = (await ledger.stub.CreateInvoice(_create(payee, 100), metadata=ledger.auth())).invoice
    await _sql(
        ledger,
        "UPDATE invoices SET due_at = now() - interval '1 minute' WHERE invoice_id = $1",
        uuid.UUID(overdue.invoice_id),
    )
    read = await ledger.stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=overdue.invoice_id), metadata=ledger.auth())
    assert read.invoice.status == pb.INVOICE_STATUS_OVERDUE
    late = await _error(ledger.stub.PayInvoice(_pay(overdue.invoice_id, payer), metadata=ledger.auth()))
    assert late.code == grpc.StatusCode.FAILED_PRECONDITION
    assert late.reason == "INVOICE_NOT_PAYABLE"
    assert late.metadata["status"] == "OVERDUE"

    open_invoice = (await ledger.stub.CreateInvoice(_create(payee, 100), metadata=ledger.auth())).invoice
    cancel = pb.CancelInvoiceRequest(
        invoice_id=open_invoice.invoice_id, reason="duplicate", request_id=str(uuid.uuid4())
    )
    cancelled = await ledger.stub.CancelInvoice(cancel, metadata=ledger.auth())
    assert cancelled.invoice.status == pb.INVOICE_STATUS_CANCELLED
    assert (await ledger.stub.CancelInvoice(cancel, metadata=ledger.auth())) == cancelled
    refused = await _error(ledger.stub.PayInvoice(_pay(open_invoice.invoice_id, payer), metadata=ledger.auth()))
    assert refused.reason == "INVOICE_NOT_PAYABLE"
    assert refused.metadata["status"] == "CANCELLED"
    assert (await ledger.balance(payer)).available.amount_minor == 1_000


async def test_foreign_invoices_are_not_found(ledger: LedgerHarness) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    alice_wallet = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=alice)
    bob_wallet = await ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=bob)
    await ledger.fund(bob_wallet, 1_000)
    merchant = await ledger.open()
    addressed = (
        await ledger.stub.CreateInvoice(_create(merchant, 100, payer_customer_id=alice), metadata=ledger.auth())
    ).invoice
    other_tenant = await _error(
        ledger.stub.GetInvoice(
            pb.GetInvoiceRequest(invoice_id=addressed.invoice_id), metadata=ledger.auth(org=str(uuid.uuid4()))
        )
    )
    assert other_tenant.code == grpc.StatusCode.NOT_FOUND
    bob_reads = await _error(
        ledger.stub.GetInvoice(
            pb.GetInvoiceRequest(invoice_id=addressed.invoice_id), metadata=ledger.customer_auth(bob)
        )
    )
    assert bob_reads.code == grpc.StatusCode.NOT_FOUND
    bob_pays = await _error(
        ledger.stub.PayInvoice(_pay(addressed.invoice_id, bob_wallet), metadata=ledger.customer_auth(bob))
    )
    assert bob_pays.code == grpc.StatusCode.NOT_FOUND
    # A customer cannot pay from someone else's wallet, and cannot invoice into someone else's account.
    alice_from_bob = await _error(
        ledger.stub.PayInvoice(_pay(addressed.invoice_id, bob_wallet), metadata=ledger.customer_auth(alice))
    )
    assert alice_from_bob.code == grpc.StatusCode.NOT_FOUND
    foreign_payee = await _error(
        ledger.stub.CreateInvoice(_create(bob_wallet, 5), metadata=ledger.customer_auth(alice))
    )
    assert foreign_payee.code == grpc.StatusCode.NOT_FOUND
    # Alice invoices Bob into her own wallet; Bob pays it; Alice lists it as payee, Bob as payer.
    request = _create(alice_wallet, 250, payer_customer_id=bob)
    own = (await ledger.stub.CreateInvoice(request, metadata=ledger.customer_auth(alice))).invoice
    paid = await ledger.stub.PayInvoice(_pay(own.invoice_id, bob_wallet), metadata=ledger.customer_auth(bob))
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    bob_list = await ledger.stub.ListInvoices(pb.ListInvoicesRequest(), metadata=ledger.customer_auth(bob))
    assert [i.invoice_id for i in bob_list.invoices] == [own.invoice_id]
    alice_list = await ledger.stub.ListInvoices(
        pb.ListInvoicesRequest(payee_account_id=alice_wallet), metadata=ledger.customer_auth(alice)
    )
    assert [i.invoice_id for i in alice_list.invoices] == [own.invoice_id]
    bob_lists_alice = await _error(
        ledger.stub.ListInvoices(
            pb.ListInvoicesRequest(payee_account_id=alice_wallet), metadata=ledger.customer_auth(bob)
        )
    )
    assert bob_lists_alice.code == grpc.StatusCode.NOT_FOUND
    bob_cancels = await _error(
        ledger.stub.CancelInvoice(
            pb.CancelInvoiceRequest(invoice_id=addressed.invoice_id, request_id=str(uuid.uuid4())),
            metadata=ledger.customer_auth(bob),
        )
    )
    assert bob_cancels.code == grpc.StatusCode.NOT_FOUND


async def test_list_pages_newest_first_and_filters_by_derived_status(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    created = [
        (await ledger.stub.CreateInvoice(_create(payee, 10 + i), metadata=ledger.auth())).invoice.invoice_id
        for i in range(5)
    ]
    await ledger.stub.PayInvoice(_pay(created[0], payer), metadata=ledger.auth())
    await _sql(
        ledger,
        "UPDATE invoices SET due_at = now() - interval '1 minute' WHERE invoice_id = $1",
        uuid.UUID(created[1]),
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await ledger.stub.ListInvoices(
            pb.ListInvoicesRequest(payee_account_id=payee, page_size=2, page_token=token), metadata=ledger.auth()
        )
        assert len(page.invoices) <= 2
        seen += [i.invoice_id for i in page.invoices]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(created))
    expected = {
        pb.INVOICE_STATUS_PAID: [created[0]],
        pb.INVOICE_STATUS_OVERDUE: [created[1]],
        pb.INVOICE_STATUS_OPEN: list(reversed(created[2:])),
    }
    for status, ids in expected.items():
        filtered = await ledger.stub.ListInvoices(
            pb.ListInvoicesRequest(payee_account_id=payee, status=status), metadata=ledger.auth()
        )
        assert [i.invoice_id for i in filtered.invoices] == ids
        assert {i.status for i in filtered.invoices} <= {status}
    mismatched = await _error(
        ledger.stub.ListInvoices(
            pb.ListInvoicesRequest(page_token=page.next_page_token or "x"), metadata=ledger.auth()
        )
    )
    assert mismatched.code == grpc.StatusCode.INVALID_ARGUMENT
