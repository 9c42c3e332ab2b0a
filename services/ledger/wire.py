"""Proto ⇄ domain conversions for the servicer (and nothing else)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from google.protobuf import timestamp_pb2

from services.kit.errors import WalletError
from services.kit.timestamps import timestamp_from_datetime
from services.ledger.currencies import Currency
from services.ledger.domain_accounts import Account, Balances, Money
from services.ledger.domain_transfers import RiskCheck, Transfer
from services.ledger.service_fx import ExchangeResult
from services.ledger.service_integrity import ChainVerdict, InclusionProof, InvariantReport
from services.ledger.service_reversals import Reversal, ReversalRequest
from services.ledger.service_statements import Statement
from services.ledger.service_transfers import BatchResult, TransferRequest, error_reason
from services.ledger.store_accounts import AuditEvent
from services.ledger.store_fx import FxRate, Quote
from services.ledger.store_transfer_links import TransferLinks
from services.ledger.store_transfers import BalanceAt
from wallet.common.v1 import errors_pb2, money_pb2
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_approvals_pb2,
    ledger_assets_pb2,
    ledger_fx_pb2,
    ledger_integrity_pb2,
    ledger_statements_pb2,
    ledger_transfers_pb2,
)


def money_in(message: money_pb2.Money, present: bool) -> Money | None:
    return Money(message.currency, message.amount_minor) if present else None


def money_out(currency: str, amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency=currency, amount_minor=amount_minor)


def timestamp_out(moment: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if moment is None else timestamp_from_datetime(moment)


def timestamp_in(stamp: timestamp_pb2.Timestamp, present: bool) -> dt.datetime | None:
    return stamp.ToDatetime(tzinfo=dt.UTC) if present else None


def balance_out(account: Account, as_of: dt.datetime) -> ledger_accounts_pb2.AccountBalance:
    b = account.balances
    return ledger_accounts_pb2.AccountBalance(
        posted_debits_minor=b.posted_debits_minor,
        posted_credits_minor=b.posted_credits_minor,
        pending_debits_minor=b.pending_debits_minor,
        pending_credits_minor=b.pending_credits_minor,
        available=money_out(account.currency, account.available_minor()),
        as_of=timestamp_out(as_of),
    )


def balance_at_out(account: Account, balance: BalanceAt, as_of: dt.datetime) -> ledger_accounts_pb2.AccountBalance:
    past = replace(
        account,
        balances=Balances(
            balance.posted_debits_minor,
            balance.posted_credits_minor,
            balance.pending_debits_minor,
            balance.pending_credits_minor,
        ),
    )
    return balance_out(past, as_of)


def account_out(account: Account, now: dt.datetime) -> ledger_accounts_pb2.Account:
    message = ledger_accounts_pb2.Account(
        account_id=str(account.account_id),
        customer_id=str(account.customer_id or ""),
        kind=int(account.kind),  # type: ignore[arg-type]
        currency=account.currency,
        balance_rule=int(account.balance_rule),  # type: ignore[arg-type]
        status=int(account.status),  # type: ignore[arg-type]
        balance=balance_out(account, now),
        credit_limit=money_out(account.currency, account.credit_limit_minor),
        daily_outflow_used=money_out(account.currency, account.outflow_used_on(now.date())),
        label=account.label,
        freeze_reason=account.freeze_reason,
        created_at=timestamp_out(account.created_at),
        updated_at=timestamp_out(account.updated_at),
        closed_at=timestamp_out(account.closed_at),
    )
    if account.daily_outflow_limit_minor is not None:
        message.daily_outflow_limit.CopyFrom(money_out(account.currency, account.daily_outflow_limit_minor))
    return message


def asset_out(currency: Currency, created_at: dt.datetime | None) -> ledger_assets_pb2.Asset:
    return ledger_assets_pb2.Asset(
        asset_code=currency.code,
        scale=currency.scale,
        display_name=currency.name,
        iso_currency=currency.iso,
        created_at=timestamp_out(created_at),
    )


def transfer_request_in(
    message: ledger_transfers_pb2.CreateTransferRequest | ledger_transfers_pb2.BatchTransfer,
) -> TransferRequest:
    return TransferRequest(
        transfer_id=message.transfer_id,
        debit_account_id=message.debit_account_id,
        credit_account_id=message.credit_account_id,
        amount=money_in(message.amount, message.HasField("amount")),
        pending=message.pending,
        hold_timeout_ms=message.hold_timeout.ToMilliseconds() if message.HasField("hold_timeout") else 0,
        reference=message.reference,
    )


def reversal_request_in(message: ledger_transfers_pb2.ReverseTransferRequest) -> ReversalRequest:
    return ReversalRequest(
        transfer_id=message.transfer_id,
        original_transfer_id=message.original_transfer_id,
        amount=money_in(message.amount, message.HasField("amount")),
        reason=int(message.reason),
        complaint_id=message.complaint_id,
        reference=message.reference,
    )


def reversal_out(reversal: Reversal) -> ledger_transfers_pb2.ReverseTransferResponse:
    return ledger_transfers_pb2.ReverseTransferResponse(
        transfer=transfer_out(reversal.transfer), original_transfer=transfer_out(reversal.original)
    )


def transfer_out(transfer: Transfer, links: TransferLinks | None = None) -> ledger_transfers_pb2.Transfer:
    message = ledger_transfers_pb2.Transfer()
    fill_transfer(message, transfer, links)
    return message


def fill_transfer(
    message: ledger_transfers_pb2.Transfer, transfer: Transfer, links: TransferLinks | None = None
) -> None:
    """Writes ``transfer`` into an empty message in place: a batch's results fill their own ``transfer`` fields
    instead of building a message and copying it (half the cost per item). Sub-messages are set even when empty
    (``risk``, the amounts), as a constructor with keyword arguments would."""
    currency = transfer.currency
    message.transfer_id = str(transfer.transfer_id)
    message.debit_account_id = str(transfer.debit_account_id)
    message.credit_account_id = str(transfer.credit_account_id)
    for money, amount_minor in (
        (message.amount, transfer.amount_minor),
        (message.posted_amount, transfer.posted_amount_minor),
        (message.reversed_amount, transfer.reversed_amount_minor),
    ):
        money.currency = currency
        money.amount_minor = amount_minor
    message.kind = int(transfer.kind)  # type: ignore[assignment]
    message.status = int(transfer.status)  # type: ignore[assignment]
    message.reference = transfer.reference
    message.reversal_of_transfer_id = str(transfer.reversal_of_transfer_id or "")
    if transfer.hold_expires_at is not None:
        message.hold_expires_at.CopyFrom(timestamp_from_datetime(transfer.hold_expires_at))
    message.void_reason = int(transfer.void_reason)  # type: ignore[assignment]
    message.exchange_id = str(transfer.exchange_id or "")
    message.batch_id = str(transfer.batch_id or "")
    message.risk.CopyFrom(risk_out(transfer))
    message.created_by_principal_id = transfer.created_by_principal_id
    message.sequence = transfer.sequence
    message.created_at.CopyFrom(timestamp_from_datetime(transfer.created_at))
    if transfer.posted_at is not None:
        message.posted_at.CopyFrom(timestamp_from_datetime(transfer.posted_at))
    if transfer.finalized_at is not None:
        message.finalized_at.CopyFrom(timestamp_from_datetime(transfer.finalized_at))
    if links is not None:
        message.invoice_id = str(links.invoice_id or "")
        message.card_id = str(links.card_id or "")
        message.approved_by_principal_id = links.approved_by_principal_id


def review_outcome_in(outcome: int) -> bool | None:
    """ReviewOutcome → approve (True) / reject (False); None for an unset or unknown value."""
    if outcome == ledger_approvals_pb2.REVIEW_OUTCOME_APPROVE:
        return True
    if outcome == ledger_approvals_pb2.REVIEW_OUTCOME_REJECT:
        return False
    return None


def risk_out(transfer: Transfer) -> ledger_transfers_pb2.TransferRisk:
    risk = transfer.risk
    return ledger_transfers_pb2.TransferRisk(
        check=int(risk.check),  # type: ignore[arg-type]
        decision=int(risk.decision),  # type: ignore[arg-type]
        score=risk.score,
        reason_codes=risk.reason_codes,
        # Risk's assessment id is the transfer id (the gate passes it as the idempotency key).
        assessment_id=str(transfer.transfer_id) if risk.check is RiskCheck.ASSESSED else "",
        case_id=str(risk.case_id or ""),
        rules_version=risk.rules_version,
    )


def batch_result_out(result: BatchResult) -> ledger_transfers_pb2.BatchTransferResult:
    message = ledger_transfers_pb2.BatchTransferResult(index=result.index)
    if result.transfer is not None:
        fill_transfer(message.transfer, result.transfer)
    if result.error is not None:
        message.error_reason = _reason_number(result.error)  # type: ignore[assignment]
        message.error_message = result.error.message
        message.error_metadata.update(result.error.metadata)
    return message


def _reason_number(error: WalletError) -> int:
    return errors_pb2.ErrorReason.Value(f"ERROR_REASON_{error_reason(error)}")


def statement_out(statement: Statement) -> ledger_statements_pb2.GetStatementResponse:
    lines = [
        ledger_statements_pb2.StatementLine(
            sequence=row.sequence,
            transfer_id=str(row.posting.transfer_id),
            kind=int(row.kind),  # type: ignore[arg-type]
            side=int(row.posting.side),  # type: ignore[arg-type]
            amount=money_out(statement.currency, row.posting.amount_minor),
            running_balance=money_out(statement.currency, running),
            counterparty_account_id=str(row.posting.counterparty_account_id),
            reference=row.reference,
            exchange_id=str(row.exchange_id or ""),
            reversal_of_transfer_id=str(row.reversal_of_transfer_id or ""),
            posted_at=timestamp_out(row.posting.posted_at),
        )
        for row, running in statement.lines
    ]
    return ledger_statements_pb2.GetStatementResponse(
        lines=lines,
        opening_balance=money_out(statement.currency, statement.opening_balance_minor),
        next_page_token=statement.next_page_token,
    )


def verdict_out(verdict: ChainVerdict) -> ledger_integrity_pb2.VerifyChainResponse:
    return ledger_integrity_pb2.VerifyChainResponse(
        intact=verdict.intact,
        first_broken_sequence=verdict.first_broken_sequence,
        entries_checked=verdict.entries_checked,
        blocks_checked=verdict.blocks_checked,
        last_sequence=verdict.last_sequence,
        last_hash=verdict.last_hash,
    )


def proof_out(proof: InclusionProof) -> ledger_integrity_pb2.InclusionProof:
    return ledger_integrity_pb2.InclusionProof(
        transfer_id=str(proof.transfer_id),
        sequence=proof.sequence,
        canonical_entry=proof.canonical_entry,
        previous_hash=proof.previous_hash,
        entry_hash=proof.entry_hash,
        block_number=proof.block.block_number,
        leaf_index=proof.leaf_index,
        leaf_count=proof.leaf_count,
        audit_path=proof.audit_path,
        merkle_root=proof.block.merkle_root,
        sealed_at=timestamp_out(proof.block.sealed_at),
    )


def invariants_out(report: InvariantReport) -> ledger_integrity_pb2.CheckInvariantsResponse:
    return ledger_integrity_pb2.CheckInvariantsResponse(
        intact=report.intact,
        totals=[
            ledger_integrity_pb2.CurrencyTotals(
                currency=currency, posted_debits_minor=debits, posted_credits_minor=credits
            )
            for _, currency, debits, credits in report.totals
        ],
        violations=[
            ledger_integrity_pb2.InvariantViolation(
                kind=finding.kind,  # type: ignore[arg-type]
                currency=finding.currency,
                account_id=finding.account_id,
                transfer_id=finding.transfer_id,
                detail=finding.detail,
            )
            for finding in report.violations
        ],
        checked_at=timestamp_out(report.checked_at),
    )


def fx_rate_out(rate: FxRate) -> ledger_fx_pb2.FxRate:
    return ledger_fx_pb2.FxRate(
        base_currency=rate.base_currency,
        quote_currency=rate.quote_currency,
        rate=format(rate.rate.normalize(), "f"),
        set_at=timestamp_out(rate.set_at),
        set_by_principal_id=rate.set_by_principal_id,
        valid_until=timestamp_out(rate.valid_until),
    )


def quote_out(quote: Quote) -> ledger_fx_pb2.ExchangeQuote:
    return ledger_fx_pb2.ExchangeQuote(
        quote_id=str(quote.quote_id),
        debit_account_id=str(quote.debit_account_id),
        credit_account_id=str(quote.credit_account_id),
        sell_amount=money_out(quote.sell_currency, quote.sell_amount_minor),
        buy_amount=money_out(quote.buy_currency, quote.buy_amount_minor),
        rate=format(quote.rate.normalize(), "f"),
        expires_at=timestamp_out(quote.expires_at),
        created_at=timestamp_out(quote.created_at),
    )


def exchange_out(result: ExchangeResult) -> ledger_fx_pb2.Exchange:
    quote = result.quote
    return ledger_fx_pb2.Exchange(
        exchange_id=str(result.record.exchange_id),
        quote_id=str(quote.quote_id),
        debit_account_id=str(quote.debit_account_id),
        credit_account_id=str(quote.credit_account_id),
        sell_amount=money_out(quote.sell_currency, quote.sell_amount_minor),
        buy_amount=money_out(quote.buy_currency, quote.buy_amount_minor),
        rate=format(quote.rate.normalize(), "f"),
        sell_transfer_id=str(result.record.sell_transfer_id),
        buy_transfer_id=str(result.record.buy_transfer_id),
        created_at=timestamp_out(result.record.created_at),
    )


def audit_event_out(event: AuditEvent) -> ledger_integrity_pb2.AuditEvent:
    return ledger_integrity_pb2.AuditEvent(
        audit_event_id=str(event.audit_event_id),
        method=event.method,
        actor_principal_id=event.actor_principal_id,
        resource_id=event.resource_id,
        request_id=event.request_id,
        trace_id=event.trace_id,
        details=event.details,
        occurred_at=timestamp_out(event.occurred_at),
    )
