"""SQL for invoices. Every read joins the latest payment transfer, whose state decides "paid"; lists are
keyset-paginated newest first over an index that starts with organization_id."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ledger.domain_invoices import Invoice, InvoiceStatus, LineItem
from services.ledger.domain_transfers import TransferStatus

_SELECT = """SELECT i.organization_id, i.invoice_id, i.payee_account_id, i.currency, i.amount_minor, i.reference,
       i.due_at, i.line_items, i.payer_customer_id, i.created_by_principal_id, i.created_at,
       i.payment_transfer_id, i.cancelled_at, i.cancel_reason, i.cancel_request_id,
       t.status AS payment_status, t.posted_at AS payment_posted_at
  FROM invoices i
  LEFT JOIN transfers t ON t.organization_id = i.organization_id AND t.transfer_id = i.payment_transfer_id"""

# The SQL twin of Invoice.status_at, for the status filter (tests/integration/ledger/test_invoices.py checks both
# agree).
_DERIVED_STATUS = f"""CASE WHEN i.cancelled_at IS NOT NULL THEN {int(InvoiceStatus.CANCELLED)}
    WHEN t.status = {int(TransferStatus.POSTED)} THEN {int(InvoiceStatus.PAID)}
    WHEN i.due_at <= $2 THEN {int(InvoiceStatus.OVERDUE)} ELSE {int(InvoiceStatus.OPEN)} END"""

_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
_MAX_UUID = uuid.UUID(int=(1 << 128) - 1)


def _line_items_json(items: tuple[LineItem, ...]) -> str:
    return json.dumps([[i.description, i.quantity, i.unit_amount_minor] for i in items])


def invoice_from_row(row: Mapping[str, Any]) -> Invoice:
    items = tuple(LineItem(d, q, u) for d, q, u in json.loads(row["line_items"]))
    payment_status = row["payment_status"]
    return Invoice(
        organization_id=row["organization_id"],
        invoice_id=row["invoice_id"],
        payee_account_id=row["payee_account_id"],
        currency=row["currency"],
        amount_minor=row["amount_minor"],
        reference=row["reference"],
        due_at=row["due_at"],
        line_items=items,
        payer_customer_id=row["payer_customer_id"],
        created_by_principal_id=row["created_by_principal_id"],
        created_at=row["created_at"],
        payment_transfer_id=row["payment_transfer_id"],
        payment_status=None if payment_status is None else TransferStatus(payment_status),
        payment_posted_at=row["payment_posted_at"],
        cancelled_at=row["cancelled_at"],
        cancel_reason=row["cancel_reason"],
        cancel_request_id=row["cancel_request_id"],
    )


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    payee_account_id: uuid.UUID | None
    payer_customer_id: uuid.UUID | None
    status: int


class InvoiceStore:
    async def insert_invoice(self, connection: asyncpg.Connection, invoice: Invoice) -> bool:
        """False when an invoice with this id exists already (nothing written)."""
        status = await connection.execute(
            """INSERT INTO invoices (organization_id, invoice_id, payee_account_id, currency, amount_minor, reference,
                   due_at, line_items, payer_customer_id, created_by_principal_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
               ON CONFLICT (organization_id, invoice_id) DO NOTHING""",
            invoice.organization_id,
            invoice.invoice_id,
            invoice.payee_account_id,
            invoice.currency,
            invoice.amount_minor,
            invoice.reference,
            invoice.due_at,
            _line_items_json(invoice.line_items),
            invoice.payer_customer_id,
            invoice.created_by_principal_id,
            invoice.created_at,
        )
        return bool(status == "INSERT 0 1")

    async def get_invoice(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, invoice_id: uuid.UUID, *, lock: bool = False
    ) -> Invoice | None:
        if lock:
            # Lock first, read after: a locking read that joins would re-check only the locked row after waiting and
            # keep the joined payment transfer from its older snapshot (missing a payment that just committed). The
            # read below is a new statement, so in READ COMMITTED it sees what committed before the lock was granted.
            await connection.execute(
                "SELECT 1 FROM invoices WHERE organization_id = $1 AND invoice_id = $2 FOR UPDATE",
                organization_id,
                invoice_id,
            )
        row = await connection.fetchrow(
            f"{_SELECT} WHERE i.organization_id = $1 AND i.invoice_id = $2",
            organization_id,
            invoice_id,
        )
        return None if row is None else invoice_from_row(row)

    async def set_invoice_payment(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        invoice_id: uuid.UUID,
        transfer_id: uuid.UUID,
    ) -> None:
        await connection.execute(
            "UPDATE invoices SET payment_transfer_id = $3 WHERE organization_id = $1 AND invoice_id = $2",
            organization_id,
            invoice_id,
            transfer_id,
        )

    async def cancel_invoice(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        invoice_id: uuid.UUID,
        *,
        reason: str,
        request_id: uuid.UUID,
        now: dt.datetime,
    ) -> None:
        await connection.execute(
            """UPDATE invoices SET cancelled_at = $3, cancel_reason = $4, cancel_request_id = $5
               WHERE organization_id = $1 AND invoice_id = $2""",
            organization_id,
            invoice_id,
            now,
            reason,
            request_id,
        )

    async def list_invoices(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: InvoiceFilter,
        before: tuple[dt.datetime, uuid.UUID] | None,
        now: dt.datetime,
        limit: int,
    ) -> list[Invoice]:
        """Newest first. The leading filter picks the index (payee, else payer, else time)."""
        before_time, before_id = before if before is not None else (_FAR_FUTURE, _MAX_UUID)
        args: list[Any] = [organization_id, now, before_time, before_id, filters.status, limit]
        conditions = [
            "i.organization_id = $1",
            "(i.created_at, i.invoice_id) < ($3, $4)",
            f"($5::smallint = 0 OR {_DERIVED_STATUS} = $5)",
        ]
        if filters.payee_account_id is not None:
            args.append(filters.payee_account_id)
            conditions.append(f"i.payee_account_id = ${len(args)}")
        if filters.payer_customer_id is not None:
            args.append(filters.payer_customer_id)
            conditions.append(f"i.payer_customer_id = ${len(args)}")
        sql = f"""{_SELECT} WHERE {" AND ".join(conditions)}
                  ORDER BY i.created_at DESC, i.invoice_id DESC LIMIT $6"""
        rows = await connection.fetch(sql, *args)
        return [invoice_from_row(r) for r in rows]
