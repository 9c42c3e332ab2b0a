"""Invoices (payment requests): validation, the derived status, and who may pay or cancel. Pure: no I/O, the
clock is passed in.

An invoice stores no status column. Its status derives from three facts: `cancelled_at`, the state of its latest
payment transfer (the transfer is the single source of truth for "paid"), and `due_at` against the clock. A
payment held for approval or review keeps the invoice OPEN but not payable; a voided or expired payment makes it
payable again.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from services.kit.errors import FieldViolation, first_differing_field
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.domain_accounts import Money, validate_money_field
from services.ledger.domain_transfers import HOLD_STATUSES, TransferStatus
from services.ledger.errors import InvoiceNotOpen, InvoiceNotPayable


class InvoiceStatus(enum.IntEnum):
    OPEN = 1
    PAID = 2
    CANCELLED = 3
    OVERDUE = 4


@dataclass(frozen=True, slots=True)
class LineItem:
    description: str
    quantity: int
    unit_amount_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_amount_minor


@dataclass(frozen=True, slots=True)
class LineItemInput:
    """One line item as the caller sent it (the unit amount's currency is checked against the invoice's)."""

    description: str
    quantity: int
    unit_amount: Money | None


@dataclass(frozen=True, slots=True)
class CreateInvoiceCommand:
    invoice_id: uuid.UUID
    payee_account_id: uuid.UUID
    currency: str
    amount_minor: int
    reference: str
    due_at: dt.datetime
    line_items: tuple[LineItem, ...]
    payer_customer_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Invoice:
    organization_id: uuid.UUID
    invoice_id: uuid.UUID
    payee_account_id: uuid.UUID
    currency: str
    amount_minor: int
    reference: str
    due_at: dt.datetime
    line_items: tuple[LineItem, ...]
    payer_customer_id: uuid.UUID | None
    created_by_principal_id: str
    created_at: dt.datetime
    # The latest payment attempt and, read with it, that transfer's state.
    payment_transfer_id: uuid.UUID | None
    payment_status: TransferStatus | None
    payment_posted_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str
    cancel_request_id: uuid.UUID | None

    def status_at(self, now: dt.datetime) -> InvoiceStatus:
        if self.cancelled_at is not None:
            return InvoiceStatus.CANCELLED
        if self.payment_status is TransferStatus.POSTED:
            return InvoiceStatus.PAID
        if now >= self.due_at:
            return InvoiceStatus.OVERDUE
        return InvoiceStatus.OPEN

    def payment_in_flight(self) -> bool:
        return self.payment_status in HOLD_STATUSES

    @property
    def paid_by_transfer_id(self) -> uuid.UUID | None:
        return self.payment_transfer_id if self.payment_status is TransferStatus.POSTED else None


def parse_create_invoice(
    *,
    invoice_id: str,
    payee_account_id: str,
    amount: Money | None,
    reference: str,
    due_at: dt.datetime | None,
    line_items: list[LineItemInput],
    payer_customer_id: str,
    now: dt.datetime,
) -> tuple[CreateInvoiceCommand | None, list[FieldViolation]]:
    """Validates a CreateInvoice request, collecting every violation."""
    violations: list[FieldViolation] = []
    parsed_id = parse_uuid(invoice_id, "invoice_id", violations)
    payee = parse_uuid(payee_account_id, "payee_account_id", violations)
    payer = parse_uuid(payer_customer_id, "payer_customer_id", violations, required=False)
    if amount is None:
        violations.append(FieldViolation("amount", "is required"))
    else:
        validate_money_field("amount", amount.currency, amount.amount_minor, violations, positive=True)
    if len(reference) > limits.REFERENCE_CHARS_MAX:
        violations.append(FieldViolation("reference", f"must be at most {limits.REFERENCE_CHARS_MAX} characters"))
    _check_due(due_at, now, violations)
    items = _parse_line_items(line_items, amount, violations)
    if violations:
        return None, violations
    assert parsed_id is not None
    assert payee is not None
    assert amount is not None
    assert due_at is not None
    command = CreateInvoiceCommand(
        invoice_id=parsed_id,
        payee_account_id=payee,
        currency=amount.currency,
        amount_minor=amount.amount_minor,
        reference=reference,
        due_at=due_at,
        line_items=items,
        payer_customer_id=payer,
    )
    return command, []


def _check_due(due_at: dt.datetime | None, now: dt.datetime, violations: list[FieldViolation]) -> None:
    if due_at is None:
        violations.append(FieldViolation("due_at", "is required"))
    elif due_at <= now:
        violations.append(FieldViolation("due_at", "must be in the future"))
    elif due_at > now + dt.timedelta(seconds=limits.INVOICE_DUE_S_MAX):
        violations.append(FieldViolation("due_at", f"must be at most {limits.INVOICE_DUE_S_MAX} s ahead"))


def _parse_line_items(
    line_items: list[LineItemInput], amount: Money | None, violations: list[FieldViolation]
) -> tuple[LineItem, ...]:
    """Each item valid, in the invoice's currency, and together exactly the invoice's amount."""
    if len(line_items) > limits.INVOICE_LINE_ITEMS_MAX:
        violations.append(FieldViolation("line_items", f"must hold at most {limits.INVOICE_LINE_ITEMS_MAX} items"))
        return ()
    items: list[LineItem] = []
    for index, item in enumerate(line_items):
        parsed = _parse_line_item(f"line_items[{index}]", item, amount, violations)
        if parsed is not None:
            items.append(parsed)
    if amount is not None and items and len(items) == len(line_items):
        total = sum(i.amount_minor for i in items)
        if total != amount.amount_minor:
            violations.append(
                FieldViolation("line_items", f"add up to {total}, not the invoice amount {amount.amount_minor}")
            )
    return tuple(items)


def _parse_line_item(
    field: str, item: LineItemInput, amount: Money | None, violations: list[FieldViolation]
) -> LineItem | None:
    before = len(violations)
    if not item.description.strip():
        violations.append(FieldViolation(f"{field}.description", "is required"))
    elif len(item.description) > limits.INVOICE_LINE_DESCRIPTION_CHARS_MAX:
        violations.append(
            FieldViolation(
                f"{field}.description", f"must be at most {limits.INVOICE_LINE_DESCRIPTION_CHARS_MAX} characters"
            )
        )
    if item.quantity <= 0:
        violations.append(FieldViolation(f"{field}.quantity", "must be positive"))
    if item.unit_amount is None:
        violations.append(FieldViolation(f"{field}.unit_amount", "is required"))
    else:
        unit = item.unit_amount
        validate_money_field(f"{field}.unit_amount", unit.currency, unit.amount_minor, violations, positive=True)
        if amount is not None and unit.currency != amount.currency:
            violations.append(FieldViolation(f"{field}.unit_amount.currency", f"must be {amount.currency}"))
        elif item.quantity > 0 and item.quantity * unit.amount_minor > limits.TRANSFER_AMOUNT_MINOR_MAX:
            violations.append(FieldViolation(f"{field}.quantity", "quantity x unit_amount is too large"))
    if len(violations) > before:
        return None
    assert item.unit_amount is not None
    return LineItem(item.description, item.quantity, item.unit_amount.amount_minor)


def first_difference(command: CreateInvoiceCommand, existing: Invoice) -> str | None:
    """The first request field in which a replayed CreateInvoice differs from the stored invoice."""
    checks: list[tuple[str, object, object]] = [
        ("payee_account_id", command.payee_account_id, existing.payee_account_id),
        ("amount.currency", command.currency, existing.currency),
        ("amount.amount_minor", command.amount_minor, existing.amount_minor),
        ("reference", command.reference, existing.reference),
        ("due_at", command.due_at, existing.due_at),
        ("line_items", command.line_items, existing.line_items),
        ("payer_customer_id", command.payer_customer_id, existing.payer_customer_id),
    ]
    return first_differing_field(checks)


def ensure_payable(invoice: Invoice, now: dt.datetime) -> None:
    """Only an OPEN invoice with no payment in flight takes a payment."""
    status = invoice.status_at(now)
    if status is not InvoiceStatus.OPEN:
        raise InvoiceNotPayable(str(invoice.invoice_id), status.name)
    if invoice.payment_in_flight():
        raise InvoiceNotPayable(str(invoice.invoice_id), "AWAITING_PAYMENT")


def ensure_cancellable(invoice: Invoice, now: dt.datetime) -> None:
    """OPEN and OVERDUE invoices can be cancelled, unless a payment is in flight."""
    status = invoice.status_at(now)
    if status not in (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE):
        raise InvoiceNotOpen(str(invoice.invoice_id), status.name)
    if invoice.payment_in_flight():
        raise InvoiceNotOpen(str(invoice.invoice_id), "AWAITING_PAYMENT")


def may_read(invoice: Invoice, customer_id: uuid.UUID | None, payee_customer_id: uuid.UUID | None) -> bool:
    """Members and service accounts read every invoice of the tenant. A customer reads invoices payable to its own
    accounts, addressed to it, or addressed to nobody (anyone holding the id may pay those)."""
    if customer_id is None:
        return True
    if payee_customer_id == customer_id:
        return True
    return invoice.payer_customer_id in (None, customer_id)


def may_pay(invoice: Invoice, customer_id: uuid.UUID | None) -> bool:
    """An invoice addressed to a customer is paid by that customer (or by a member or service on its behalf)."""
    if customer_id is None or invoice.payer_customer_id is None:
        return True
    return invoice.payer_customer_id == customer_id


def may_cancel(customer_id: uuid.UUID | None, payee_customer_id: uuid.UUID | None) -> bool:
    """The payee cancels: a member, or the customer who owns the payee account."""
    return customer_id is None or payee_customer_id == customer_id
