"""The ledger's domain errors: each a kit category with a reason from ``wallet/common/v1/errors.proto``."""

from __future__ import annotations

from services.kit.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)


class AccountNotFound(NotFound):
    def __init__(self, field: str = "account_id") -> None:
        super().__init__(f"{field}: account not found", metadata={"field": field})


class TransferNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("transfer not found")


class UnknownCurrency(InvalidArgument):
    reason = "UNKNOWN_CURRENCY"

    def __init__(self, field: str) -> None:
        super().__init__(
            f"{field}: unknown currency", field_violations=[FieldViolation(field, "is not an ISO 4217 code or asset")]
        )


class CurrencyMismatch(InvalidArgument):
    reason = "CURRENCY_MISMATCH"

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(
            f"{field}: the account holds {expected}",
            metadata={"field": field, "account_currency": expected},
            field_violations=[FieldViolation(field, f"account holds {expected}")],
        )


class SameAccount(InvalidArgument):
    reason = "SAME_ACCOUNT"

    def __init__(self) -> None:
        super().__init__(
            "debit and credit account are the same",
            field_violations=[FieldViolation("credit_account_id", "must differ from debit_account_id")],
        )


class InsufficientFunds(FailedPrecondition):
    reason = "INSUFFICIENT_FUNDS"

    def __init__(self, account_id: str, available_minor: int) -> None:
        super().__init__(
            "insufficient funds", metadata={"account_id": account_id, "available_minor": available_minor}
        )


class CreditLimitExceeded(FailedPrecondition):
    """The credit side of a CREDITS_MUST_NOT_EXCEED_DEBITS account would outgrow its debits (same reason)."""

    reason = "INSUFFICIENT_FUNDS"

    def __init__(self, account_id: str, available_minor: int) -> None:
        super().__init__(
            "the credited account cannot take more credits",
            metadata={"account_id": account_id, "available_minor": available_minor},
        )


class DailyLimitExceeded(FailedPrecondition):
    reason = "DAILY_LIMIT_EXCEEDED"

    def __init__(self, account_id: str, remaining_minor: int) -> None:
        super().__init__(
            "daily outflow limit exceeded", metadata={"account_id": account_id, "remaining_minor": remaining_minor}
        )


class AccountFrozen(FailedPrecondition):
    reason = "ACCOUNT_FROZEN"

    def __init__(self, account_id: str) -> None:
        super().__init__("account is frozen", metadata={"account_id": account_id})


class AccountClosed(FailedPrecondition):
    reason = "ACCOUNT_CLOSED"

    def __init__(self, account_id: str) -> None:
        super().__init__("account is closed", metadata={"account_id": account_id})


class AccountNotEmpty(FailedPrecondition):
    reason = "ACCOUNT_NOT_EMPTY"

    def __init__(self, account_id: str, balance_minor: int, open_holds_minor: int) -> None:
        super().__init__(
            "account has a balance or open holds",
            metadata={"account_id": account_id, "balance_minor": balance_minor, "open_holds_minor": open_holds_minor},
        )


class AccountStateConflict(FailedPrecondition):
    """A status move the lifecycle does not allow (e.g. unfreezing an active account)."""

    def __init__(self, account_id: str, status: str, action: str) -> None:
        super().__init__(f"cannot {action} an account that is {status}", metadata={"account_id": account_id})


class ReviewCaseMismatch(FailedPrecondition):
    """ResolveTransferReview named a case other than the one holding the transfer."""

    reason = "HOLD_NOT_PENDING"

    def __init__(self, transfer_id: str) -> None:
        super().__init__(
            "the transfer is held for another risk case",
            metadata={"transfer_id": transfer_id, "status": "AWAITING_REVIEW"},
        )


class RiskDenied(FailedPrecondition):
    """Risk refused the transfer (DENY); ``risk_reason`` is the first app-safe reason code."""

    reason = "RISK_DENIED"

    def __init__(self, reason_codes: tuple[str, ...]) -> None:
        super().__init__(
            "the transfer was declined by risk checks",
            metadata={"risk_reason": reason_codes[0] if reason_codes else "", "risk_reasons": ",".join(reason_codes)},
        )


class RiskUnavailable(Unavailable):
    """Risk did not answer within the gate's deadline and the amount is at or above the fail-open tier."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("risk checks are unavailable; retry shortly", retry_after_s=retry_after_s)


class HoldNotPending(FailedPrecondition):
    reason = "HOLD_NOT_PENDING"

    def __init__(self, transfer_id: str, status: str) -> None:
        super().__init__(
            f"the transfer is {status}, not pending", metadata={"transfer_id": transfer_id, "status": status}
        )


class HoldAmountExceeded(FailedPrecondition):
    reason = "HOLD_AMOUNT_EXCEEDED"

    def __init__(self, transfer_id: str, held_minor: int) -> None:
        super().__init__(
            "amount exceeds the held amount", metadata={"transfer_id": transfer_id, "held_minor": held_minor}
        )


class BatchItemFailed(FailedPrecondition):
    reason = "BATCH_ITEM_FAILED"

    def __init__(self, index: int, item_reason: str, message: str) -> None:
        super().__init__(f"item {index} failed: {message}", metadata={"index": index, "item_reason": item_reason})


class ChainEntryNotSealed(FailedPrecondition):
    reason = "ENTRY_NOT_SEALED"

    def __init__(self, sequence: int) -> None:
        super().__init__("the entry is not sealed into a block yet; retry shortly", metadata={"sequence": sequence})


class FxRateUnavailable(FailedPrecondition):
    reason = "FX_RATE_UNAVAILABLE"

    def __init__(self, base: str, quote: str) -> None:
        super().__init__(
            f"no valid rate for {base}/{quote}", metadata={"base_currency": base, "quote_currency": quote}
        )


class FxQuoteAlreadyUsed(FailedPrecondition):
    reason = "FX_QUOTE_ALREADY_USED"

    def __init__(self, quote_id: str) -> None:
        super().__init__("the quote was used by another exchange", metadata={"quote_id": quote_id})


class FxQuoteExpired(FailedPrecondition):
    def __init__(self, quote_id: str) -> None:
        super().__init__("the quote has expired", metadata={"quote_id": quote_id})


class InvoiceNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("invoice not found")


class InvoiceNotPayable(FailedPrecondition):
    """Paid, cancelled, overdue, or a payment of it is waiting for approval or review."""

    reason = "INVOICE_NOT_PAYABLE"

    def __init__(self, invoice_id: str, status: str) -> None:
        super().__init__(
            f"the invoice is {status} and cannot be paid", metadata={"invoice_id": invoice_id, "status": status}
        )


class InvoiceNotOpen(FailedPrecondition):
    """A verb that needs an OPEN invoice (cancel) met one in another state."""

    reason = "INVOICE_NOT_OPEN"

    def __init__(self, invoice_id: str, status: str) -> None:
        super().__init__(f"the invoice is {status}, not open", metadata={"invoice_id": invoice_id, "status": status})


class ApprovalRequired(FailedPrecondition):
    """A hold awaiting maker-checker approval is posted or voided only by ApproveTransfer / RejectTransfer."""

    reason = "APPROVAL_REQUIRED"

    def __init__(self, transfer_id: str) -> None:
        super().__init__(
            "the transfer awaits a second member's approval; use ApproveTransfer or RejectTransfer",
            metadata={"transfer_id": transfer_id},
        )


class SelfApprovalForbidden(PermissionDenied):
    reason = "SELF_APPROVAL_FORBIDDEN"

    def __init__(self, transfer_id: str) -> None:
        super().__init__("the maker of a transfer cannot approve or reject it", metadata={"transfer_id": transfer_id})


class CardNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("card not found")


class CardNotActive(FailedPrecondition):
    """Frozen, closed or expired cards neither pay nor reveal."""

    reason = "CARD_NOT_ACTIVE"

    def __init__(self, card_id: str, status: str) -> None:
        super().__init__(f"the card is {status}", metadata={"card_id": card_id, "status": status})


class CardLimitExceeded(FailedPrecondition):
    reason = "CARD_LIMIT_EXCEEDED"

    def __init__(self, card_id: str, limit: str, remaining_minor: int) -> None:
        super().__init__(
            f"the card's {limit} limit would be exceeded",
            metadata={"card_id": card_id, "limit": limit, "remaining_minor": remaining_minor},
        )


class CardLimitRaiseForbidden(PermissionDenied):
    """A customer may tighten a card's limits; raising or removing one is for the tenant's staff."""

    def __init__(self, card_id: str, field: str) -> None:
        super().__init__(
            f"{field}: customers may only lower a card's limits", metadata={"card_id": card_id, "field": field}
        )


class CardStateConflict(FailedPrecondition):
    def __init__(self, card_id: str, status: str, action: str) -> None:
        super().__init__(f"cannot {action} a card that is {status}", metadata={"card_id": card_id, "status": status})


class CardVaultUnavailable(Unavailable):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the card vault is unavailable: {detail}")


class TransferNotPosted(FailedPrecondition):
    """ReverseTransfer on a hold (pending, awaiting approval or review) or a voided or expired transfer."""

    reason = "TRANSFER_NOT_POSTED"

    def __init__(self, transfer_id: str, status: str) -> None:
        super().__init__(
            f"the transfer is {status}; only posted transfers can be reversed",
            metadata={"transfer_id": transfer_id, "status": status},
        )


class ReversalExceedsOriginal(FailedPrecondition):
    """The reversal asks for more than is left to reverse (posted minus reversed or being reversed)."""

    reason = "REVERSAL_EXCEEDS_ORIGINAL"

    def __init__(self, transfer_id: str, remaining_minor: int) -> None:
        super().__init__(
            "the reversal exceeds what is left to reverse of the original transfer",
            metadata={"transfer_id": transfer_id, "remaining_minor": remaining_minor},
        )
