"""Proto ⇄ domain conversions for invoices (and nothing else)."""

from __future__ import annotations

import datetime as dt

from services.ledger.domain_invoices import Invoice, LineItemInput
from services.ledger.domain_transfers import Transfer
from services.ledger.service_invoices import CreateInvoiceRequest
from services.ledger.wire import money_in, money_out, timestamp_in, timestamp_out, transfer_out
from wallet.ledger.v1 import ledger_invoices_pb2 as pb
from wallet.ledger.v1 import ledger_transfers_pb2


def create_request_in(message: pb.CreateInvoiceRequest) -> CreateInvoiceRequest:
    return CreateInvoiceRequest(
        invoice_id=message.invoice_id,
        payee_account_id=message.payee_account_id,
        amount=money_in(message.amount, message.HasField("amount")),
        reference=message.reference,
        due_at=timestamp_in(message.due_at, message.HasField("due_at")),
        line_items=[
            LineItemInput(item.description, item.quantity, money_in(item.unit_amount, item.HasField("unit_amount")))
            for item in message.line_items
        ],
        payer_customer_id=message.payer_customer_id,
    )


def invoice_out(invoice: Invoice, now: dt.datetime) -> pb.Invoice:
    paid_by = invoice.paid_by_transfer_id
    return pb.Invoice(
        invoice_id=str(invoice.invoice_id),
        payee_account_id=str(invoice.payee_account_id),
        amount=money_out(invoice.currency, invoice.amount_minor),
        reference=invoice.reference,
        due_at=timestamp_out(invoice.due_at),
        line_items=[
            pb.InvoiceLineItem(
                description=item.description,
                quantity=item.quantity,
                unit_amount=money_out(invoice.currency, item.unit_amount_minor),
                amount=money_out(invoice.currency, item.amount_minor),
            )
            for item in invoice.line_items
        ],
        payer_customer_id=str(invoice.payer_customer_id or ""),
        status=int(invoice.status_at(now)),  # type: ignore[arg-type]
        paid_by_transfer_id=str(paid_by or ""),
        paid_at=timestamp_out(invoice.payment_posted_at if paid_by is not None else None),
        cancelled_at=timestamp_out(invoice.cancelled_at),
        created_at=timestamp_out(invoice.created_at),
        created_by_principal_id=invoice.created_by_principal_id,
    )


def payment_transfer_out(transfer: Transfer, invoice: Invoice) -> ledger_transfers_pb2.Transfer:
    message = transfer_out(transfer)
    message.invoice_id = str(invoice.invoice_id)
    return message
