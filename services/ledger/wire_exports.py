"""Proto ⇄ domain conversions for compliance exports (and nothing else)."""

from __future__ import annotations

from services.ledger.domain_exports import ExportedTransfer
from services.ledger.wire import money_out, timestamp_out
from wallet.ledger.v1 import ledger_integrity_pb2 as pb


def exported_transfer_out(transfer: ExportedTransfer) -> pb.ExportedTransfer:
    return pb.ExportedTransfer(
        transfer_pseudonym=transfer.transfer_pseudonym,
        debit_account_pseudonym=transfer.debit_account_pseudonym,
        credit_account_pseudonym=transfer.credit_account_pseudonym,
        debit_customer_pseudonym=transfer.debit_customer_pseudonym,
        credit_customer_pseudonym=transfer.credit_customer_pseudonym,
        debit_account_kind=transfer.debit_account_kind,  # type: ignore[arg-type]
        credit_account_kind=transfer.credit_account_kind,  # type: ignore[arg-type]
        amount=money_out(transfer.currency, transfer.amount_minor),
        kind=transfer.kind,  # type: ignore[arg-type]
        status=transfer.status,  # type: ignore[arg-type]
        reversal_of_transfer_pseudonym=transfer.reversal_of_transfer_pseudonym,
        risk_decision=transfer.risk_decision,  # type: ignore[arg-type]
        created_at=timestamp_out(transfer.created_at),
        posted_at=timestamp_out(transfer.posted_at),
    )
