"""Pure invoice rules: validation with boundary values, the derived status, who may pay, read and cancel."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger import limits
from services.ledger.domain_accounts import Money
from services.ledger.domain_invoices import (
    Invoice,
    InvoiceStatus,
    LineItem,
    LineItemInput,
    ensure_cancellable,
    ensure_payable,
    may_cancel,
    may_pay,
    may_read,
    parse_create_invoice,
)
from services.ledger.domain_transfers import TransferStatus
from services.ledger.errors import InvoiceNotOpen, InvoiceNotPayable

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _parse(amount_minor: int = 100, items: list[LineItemInput] | None = None, **overrides: object) -> list[str]:
    fields: dict[str, object] = {
        "invoice_id": str(uuid.uuid4()),
        "payee_account_id": str(uuid.uuid4()),
        "amount": Money("EUR", amount_minor),
        "reference": "INV-9",
        "due_at": NOW + dt.timedelta(days=1),
        "line_items": items or [],
        "payer_customer_id": "",
        "now": NOW,
    }
    fields.update(overrides)
    _, violations = parse_create_invoice(**fields)  # type: ignore[arg-type]
    return [v.field for v in violations]


def _invoice(**overrides: object) -> Invoice:
    invoice = Invoice(
        organization_id=uuid.uuid4(),
        invoice_id=uuid.uuid4(),
        payee_account_id=uuid.uuid4(),
        currency="EUR",
        amount_minor=100,
        reference="",
        due_at=NOW + dt.timedelta(hours=1),
        line_items=(),
        payer_customer_id=None,
        created_by_principal_id="maker",
        created_at=NOW,
        payment_transfer_id=None,
        payment_status=None,
        payment_posted_at=None,
        cancelled_at=None,
        cancel_reason="",
        cancel_request_id=None,
    )
    return replace(invoice, **overrides)  # type: ignore[arg-type]


def test_valid_invoice_with_line_items_that_add_up() -> None:
    items = [LineItemInput("a", 2, Money("EUR", 30)), LineItemInput("b", 1, Money("EUR", 40))]
    assert _parse(100, items) == []


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([LineItemInput("a", 1, Money("EUR", 99))], "line_items"),
        ([LineItemInput("a", 0, Money("EUR", 100))], "line_items[0].quantity"),
        ([LineItemInput("a", -1, Money("EUR", 100))], "line_items[0].quantity"),
        ([LineItemInput(" ", 1, Money("EUR", 100))], "line_items[0].description"),
        ([LineItemInput("a", 1, Money("USD", 100))], "line_items[0].unit_amount.currency"),
        ([LineItemInput("a", 1, None)], "line_items[0].unit_amount"),
        ([LineItemInput("a", 2**40, Money("EUR", 2**20))], "line_items[0].quantity"),
    ],
)
def test_bad_line_items(items: list[LineItemInput], field: str) -> None:
    assert field in _parse(100, items)


def test_line_item_limits_at_max_and_max_plus_one() -> None:
    at_max = [LineItemInput("x", 1, Money("EUR", 1))] * limits.INVOICE_LINE_ITEMS_MAX
    assert _parse(limits.INVOICE_LINE_ITEMS_MAX, at_max) == []
    over = [*at_max, LineItemInput("x", 1, Money("EUR", 1))]
    assert _parse(limits.INVOICE_LINE_ITEMS_MAX + 1, over) == ["line_items"]
    long_text = "d" * (limits.INVOICE_LINE_DESCRIPTION_CHARS_MAX + 1)
    assert _parse(1, [LineItemInput(long_text, 1, Money("EUR", 1))]) == ["line_items[0].description"]


def test_due_time_bounds() -> None:
    assert _parse(due_at=NOW) == ["due_at"]
    assert _parse(due_at=None) == ["due_at"]
    assert _parse(due_at=NOW + dt.timedelta(seconds=limits.INVOICE_DUE_S_MAX)) == []
    assert _parse(due_at=NOW + dt.timedelta(seconds=limits.INVOICE_DUE_S_MAX + 1)) == ["due_at"]


def test_other_fields() -> None:
    assert _parse(0) == ["amount.amount_minor"]
    assert _parse(amount=None) == ["amount"]
    assert _parse(reference="r" * (limits.REFERENCE_CHARS_MAX + 1)) == ["reference"]
    assert _parse(invoice_id="x", payer_customer_id="y") == ["invoice_id", "payer_customer_id"]


def test_status_derives_from_cancel_payment_and_due_time() -> None:
    open_invoice = _invoice()
    assert open_invoice.status_at(NOW) is InvoiceStatus.OPEN
    assert open_invoice.status_at(open_invoice.due_at) is InvoiceStatus.OVERDUE
    paid = _invoice(payment_transfer_id=uuid.uuid4(), payment_status=TransferStatus.POSTED)
    assert paid.status_at(paid.due_at + dt.timedelta(days=9)) is InvoiceStatus.PAID
    assert paid.paid_by_transfer_id == paid.payment_transfer_id
    cancelled = _invoice(cancelled_at=NOW)
    assert cancelled.status_at(NOW) is InvoiceStatus.CANCELLED
    voided_payment = _invoice(payment_transfer_id=uuid.uuid4(), payment_status=TransferStatus.VOIDED)
    assert voided_payment.status_at(NOW) is InvoiceStatus.OPEN
    assert voided_payment.paid_by_transfer_id is None


@given(st.sampled_from([*list(TransferStatus), None]), st.booleans(), st.integers(-3600, 3600))
def test_payable_exactly_when_open_and_no_payment_in_flight(
    payment: TransferStatus | None, cancelled: bool, due_in_s: int
) -> None:
    invoice = _invoice(
        payment_transfer_id=uuid.uuid4() if payment else None,
        payment_status=payment,
        cancelled_at=NOW if cancelled else None,
        due_at=NOW + dt.timedelta(seconds=due_in_s),
    )
    payable = (
        not cancelled
        and due_in_s > 0
        and payment not in (TransferStatus.POSTED, TransferStatus.PENDING)
        and payment not in (TransferStatus.AWAITING_APPROVAL, TransferStatus.AWAITING_REVIEW)
    )
    if payable:
        ensure_payable(invoice, NOW)
    else:
        with pytest.raises(InvoiceNotPayable):
            ensure_payable(invoice, NOW)


def test_cancel_needs_open_or_overdue_without_payment_in_flight() -> None:
    ensure_cancellable(_invoice(due_at=NOW), NOW)
    with pytest.raises(InvoiceNotOpen):
        ensure_cancellable(_invoice(payment_transfer_id=uuid.uuid4(), payment_status=TransferStatus.POSTED), NOW)
    with pytest.raises(InvoiceNotOpen):
        ensure_cancellable(
            _invoice(payment_transfer_id=uuid.uuid4(), payment_status=TransferStatus.AWAITING_APPROVAL), NOW
        )
    with pytest.raises(InvoiceNotOpen):
        ensure_cancellable(_invoice(cancelled_at=NOW), NOW)


def test_who_may_read_pay_and_cancel() -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    addressed = _invoice(payer_customer_id=alice)
    assert may_read(addressed, None, None)
    assert may_read(addressed, alice, None)
    assert may_read(addressed, bob, bob)  # bob owns the payee account
    assert not may_read(addressed, bob, None)
    assert may_read(_invoice(), bob, None)  # addressed to nobody: anyone holding the id
    assert may_pay(addressed, alice)
    assert may_pay(addressed, None)
    assert not may_pay(addressed, bob)
    assert may_cancel(None, None)
    assert may_cancel(bob, bob)
    assert not may_cancel(alice, bob)


def test_line_item_amount() -> None:
    assert LineItem("a", 3, 7).amount_minor == 21
