"""Invoice use cases: CreateInvoice, GetInvoice, ListInvoices, PayInvoice, CancelInvoice.

PayInvoice locks the invoice row first, then commits its transfer through ``commit.commit_transfers`` in the same
transaction (invoice lock → account locks → chain head; no other writer takes an invoice lock, so the order cannot
deadlock). Of concurrent payments of one invoice exactly one commits; the others re-read it under the lock and find it
paid (or its payment awaiting approval): ``INVOICE_NOT_PAYABLE``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, PermissionDenied, invalid
from services.kit.ids import parse_uuid
from services.ledger import domain_invoices as invoices
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore, TransferItem, commit_transfers
from services.ledger.domain_accounts import Money
from services.ledger.domain_invoices import Invoice, InvoiceStatus, LineItemInput
from services.ledger.domain_transfers import Transfer, TransferCommand, TransferKind
from services.ledger.errors import AccountNotFound, CurrencyMismatch, InvoiceNotFound, SameAccount
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service_transfers import PreCommitGate
from services.ledger.store_invoices import InvoiceFilter
from services.ledger.store_ports import AccountReader


class InvoiceStorePort(CommitStore, AccountReader, Protocol):
    async def insert_invoice(self, connection: asyncpg.Connection, invoice: Invoice) -> bool: ...
    async def get_invoice(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, invoice_id: uuid.UUID, *, lock: bool = False
    ) -> Invoice | None: ...
    async def set_invoice_payment(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        invoice_id: uuid.UUID,
        transfer_id: uuid.UUID,
    ) -> None: ...
    async def cancel_invoice(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        invoice_id: uuid.UUID,
        *,
        reason: str,
        request_id: uuid.UUID,
        now: dt.datetime,
    ) -> None: ...
    async def list_invoices(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: InvoiceFilter,
        before: tuple[dt.datetime, uuid.UUID] | None,
        now: dt.datetime,
        limit: int,
    ) -> list[Invoice]: ...


@dataclass(frozen=True, slots=True)
class CreateInvoiceRequest:
    invoice_id: str
    payee_account_id: str
    amount: Money | None
    reference: str
    due_at: dt.datetime | None
    line_items: list[LineItemInput]
    payer_customer_id: str


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    invoice: Invoice
    transfer: Transfer


class InvoiceService:
    def __init__(self, pool: asyncpg.Pool, store: InvoiceStorePort, clock: Clock, gate: PreCommitGate) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._gate = gate

    async def create_invoice(self, caller: Caller, request: CreateInvoiceRequest) -> Invoice:
        now = self._clock()
        command, violations = invoices.parse_create_invoice(
            invoice_id=request.invoice_id,
            payee_account_id=request.payee_account_id,
            amount=request.amount,
            reference=request.reference,
            due_at=request.due_at,
            line_items=request.line_items,
            payer_customer_id=request.payer_customer_id,
            now=now,
        )
        if violations:
            raise invalid(violations)
        assert command is not None
        org = caller.organization_id
        async with transaction(self._pool) as connection:
            payee = await self._store.get_account(connection, org, command.payee_account_id)
            if payee is None or not caller.may_see(payee.customer_id):
                raise AccountNotFound("payee_account_id")
            if payee.currency != command.currency:
                raise CurrencyMismatch("amount.currency", payee.currency)
            wanted = Invoice(
                organization_id=org,
                invoice_id=command.invoice_id,
                payee_account_id=command.payee_account_id,
                currency=command.currency,
                amount_minor=command.amount_minor,
                reference=command.reference,
                due_at=command.due_at,
                line_items=command.line_items,
                payer_customer_id=command.payer_customer_id,
                created_by_principal_id=caller.principal_id,
                created_at=now,
                payment_transfer_id=None,
                payment_status=None,
                payment_posted_at=None,
                cancelled_at=None,
                cancel_reason="",
                cancel_request_id=None,
            )
            if await self._store.insert_invoice(connection, wanted):
                return wanted
            existing = await self._store.get_invoice(connection, org, command.invoice_id)
        assert existing is not None
        difference = invoices.first_difference(command, existing)
        if difference is not None:
            raise IdempotencyKeyReused("invoice_id", difference)
        return existing

    async def get_invoice(self, caller: Caller, invoice_id: str) -> Invoice:
        parsed = _parse_id(invoice_id, "invoice_id")
        async with self._pool.acquire() as connection:
            return await self._readable(connection, caller, parsed)

    async def _readable(self, connection: asyncpg.Connection, caller: Caller, invoice_id: uuid.UUID) -> Invoice:
        """The invoice if the caller may see it; another tenant's or customer's is NOT_FOUND."""
        invoice = await self._store.get_invoice(connection, caller.organization_id, invoice_id)
        if invoice is None:
            raise InvoiceNotFound()
        payee_customer = await self._payee_customer(connection, invoice)
        if not invoices.may_read(invoice, caller.customer_id, payee_customer):
            raise InvoiceNotFound()
        return invoice

    async def _payee_customer(self, connection: asyncpg.Connection, invoice: Invoice) -> uuid.UUID | None:
        payee = await self._store.get_account(connection, invoice.organization_id, invoice.payee_account_id)
        return None if payee is None else payee.customer_id

    async def list_invoices(
        self,
        caller: Caller,
        *,
        page_size: int,
        page_token: str,
        payee_account_id: str,
        payer_customer_id: str,
        status: int,
    ) -> Page[Invoice]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        payee = parse_uuid(payee_account_id, "payee_account_id", violations, required=False)
        payer = parse_uuid(payer_customer_id, "payer_customer_id", violations, required=False)
        if status and status not in InvoiceStatus._value2member_map_:
            violations.append(FieldViolation("status", "is not a known status"))
        if violations:
            raise invalid(violations)
        payer = await self._customer_scope(caller, payee, payer)
        filters = InvoiceFilter(payee, payer, status)
        filter_key = {"p": str(payee or ""), "c": str(payer or ""), "s": status}
        cursor = paging.decode_page_token(page_token, filter_key)
        before = None
        if cursor is not None:
            before_id = cursor_uuid(cursor, "i")
            assert before_id is not None
            before = (dt.datetime.fromisoformat(str(cursor["t"])), before_id)
        async with self._pool.acquire() as connection:
            rows = await self._store.list_invoices(
                connection, caller.organization_id, filters, before, self._clock(), size + 1
            )
        page, token = paging.next_page(
            rows, size, lambda i: {"t": i.created_at.isoformat(), "i": str(i.invoice_id)}, filter_key
        )
        return Page(page, token)

    async def _customer_scope(
        self, caller: Caller, payee: uuid.UUID | None, payer: uuid.UUID | None
    ) -> uuid.UUID | None:
        """Customers list invoices payable to one of their accounts (payee filter) or addressed to them."""
        if caller.customer_id is None:
            return payer
        if payee is not None:
            async with self._pool.acquire() as connection:
                account = await self._store.get_account(connection, caller.organization_id, payee)
            if account is None or account.customer_id != caller.customer_id:
                raise AccountNotFound("payee_account_id")
            return payer
        if payer not in (None, caller.customer_id):
            raise invalid([FieldViolation("payer_customer_id", "customers list only invoices addressed to them")])
        return caller.customer_id

    async def pay_invoice(
        self, caller: Caller, *, transfer_id: str, invoice_id: str, debit_account_id: str
    ) -> InvoicePayment:
        violations: list[FieldViolation] = []
        transfer = parse_uuid(transfer_id, "transfer_id", violations)
        invoice_key = parse_uuid(invoice_id, "invoice_id", violations)
        debit = parse_uuid(debit_account_id, "debit_account_id", violations)
        if violations:
            raise invalid(violations)
        assert transfer is not None
        assert invoice_key is not None
        assert debit is not None
        org = caller.organization_id
        async with self._pool.acquire() as connection:
            invoice = await self._payable_view(connection, caller, invoice_key)
        if debit == invoice.payee_account_id:
            raise SameAccount()
        command = _payment_command(invoice, transfer, debit)
        if invoice.payment_transfer_id != transfer:
            # A replay skips the gate: the transfer exists already and is returned as it is.
            command = await self._gate.before_commit(caller, command)
        async with transaction(self._pool) as connection:
            locked = await self._store.get_invoice(connection, org, invoice_key, lock=True)
            assert locked is not None
            if locked.payment_transfer_id != transfer:
                invoices.ensure_payable(locked, self._clock())
            outcomes = await commit_transfers(connection, self._store, [TransferItem(caller, command)], self._clock)
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            paid = outcome.transfer
            assert paid is not None
            if outcome.replayed and locked.payment_transfer_id != transfer:
                # The transfer id already names another transfer (not this invoice's payment).
                raise IdempotencyKeyReused("transfer_id", "invoice_id")
            if not outcome.replayed:
                await self._store.set_invoice_payment(connection, org, invoice_key, transfer)
            final = await self._store.get_invoice(connection, org, invoice_key)
        assert final is not None
        return InvoicePayment(final, paid)

    async def _payable_view(self, connection: asyncpg.Connection, caller: Caller, invoice_id: uuid.UUID) -> Invoice:
        invoice = await self._readable(connection, caller, invoice_id)
        if not invoices.may_pay(invoice, caller.customer_id):
            raise InvoiceNotFound()
        return invoice

    async def cancel_invoice(self, caller: Caller, *, invoice_id: str, reason: str, request_id: str) -> Invoice:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(invoice_id, "invoice_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if len(reason) > limits.REASON_CHARS_MAX:
            violations.append(FieldViolation("reason", f"must be at most {limits.REASON_CHARS_MAX} characters"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert request is not None
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            invoice = await self._store.get_invoice(connection, org, parsed, lock=True)
            if invoice is None:
                raise InvoiceNotFound()
            payee_customer = await self._payee_customer(connection, invoice)
            if not invoices.may_read(invoice, caller.customer_id, payee_customer):
                raise InvoiceNotFound()
            if not invoices.may_cancel(caller.customer_id, payee_customer):
                raise PermissionDenied("only the payee may cancel an invoice")
            if invoice.cancel_request_id == request:
                if invoice.cancel_reason != reason:
                    raise IdempotencyKeyReused("request_id", "reason")
                return invoice
            invoices.ensure_cancellable(invoice, now)
            await self._store.cancel_invoice(connection, org, parsed, reason=reason, request_id=request, now=now)
            cancelled = await self._store.get_invoice(connection, org, parsed)
        assert cancelled is not None
        return cancelled


def _parse_id(value: str, field: str) -> uuid.UUID:
    violations: list[FieldViolation] = []
    parsed = parse_uuid(value, field, violations)
    if violations:
        raise invalid(violations)
    assert parsed is not None
    return parsed


def _payment_command(invoice: Invoice, transfer_id: uuid.UUID, debit_account_id: uuid.UUID) -> TransferCommand:
    return TransferCommand(
        transfer_id=transfer_id,
        debit_account_id=debit_account_id,
        credit_account_id=invoice.payee_account_id,
        currency=invoice.currency,
        amount_minor=invoice.amount_minor,
        pending=False,
        hold_timeout_ms=0,
        reference=invoice.reference,
        kind=TransferKind.INVOICE_PAYMENT,
    )
