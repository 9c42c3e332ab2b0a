"""Transfers and holds: validation, the balance and limit rules, and the hold state machine. Pure: no I/O; the
clock arrives as ``now``.

A transfer moves ``amount_minor`` from ``debit`` to ``credit``. Applied to the two locked accounts it yields new
account states plus the postings to write. Holds (PENDING, and later AWAITING_APPROVAL / AWAITING_REVIEW) reserve
the amount in the pending columns until ``finalize_hold`` posts (fully or partly), voids or expires them: that
function is the seam maker-checker approvals and risk reviews drive.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, replace

from services.kit.errors import FieldViolation, first_differing_field, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.domain_accounts import Account, BalanceRule, Balances, Money, ensure_usable, validate_money_field
from services.ledger.errors import (
    ApprovalRequired,
    CreditLimitExceeded,
    CurrencyMismatch,
    DailyLimitExceeded,
    HoldAmountExceeded,
    HoldNotPending,
    InsufficientFunds,
    ReviewCaseMismatch,
    SameAccount,
)
from services.ledger.records import evolve


class TransferKind(enum.IntEnum):
    STANDARD = 1
    PAY_BY_PHONE = 2
    INVOICE_PAYMENT = 3
    EXCHANGE_LEG = 4
    REVERSAL = 5
    CARD_PAYMENT = 6
    LOYALTY_EARN = 7


class TransferStatus(enum.IntEnum):
    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4
    AWAITING_APPROVAL = 5
    AWAITING_REVIEW = 6


HOLD_STATUSES = frozenset({TransferStatus.PENDING, TransferStatus.AWAITING_APPROVAL, TransferStatus.AWAITING_REVIEW})


class VoidReason(enum.IntEnum):
    UNSPECIFIED = 0
    CLIENT_VOIDED = 1
    APPROVAL_REJECTED = 2
    REVIEW_REJECTED = 3
    CARD_PAYMENT_RELEASED = 4


class RiskCheck(enum.IntEnum):
    """Whether the risk gate looked at a transfer (wallet.ledger.v1.RiskCheck)."""

    UNSPECIFIED = 0  # the gate was off
    NOT_REQUIRED = 1  # not out of a customer or operating account
    ASSESSED = 2
    FAILED_OPEN = 3  # risk unavailable or late, amount below the fail-open tier


class RiskDecision(enum.IntEnum):
    UNSPECIFIED = 0
    ALLOW = 1
    CHALLENGE = 2  # committed because the caller had a fresh step-up token
    REVIEW = 3
    DENY = 4


@dataclass(frozen=True, slots=True)
class RiskRecord:
    """What the risk gate recorded on a transfer."""

    check: RiskCheck = RiskCheck.UNSPECIFIED
    decision: RiskDecision = RiskDecision.UNSPECIFIED
    score: int = 0
    reason_codes: tuple[str, ...] = ()
    rules_version: int = 0
    case_id: uuid.UUID | None = None


NO_RISK_RECORD = RiskRecord()


class EntrySide(enum.IntEnum):
    DEBIT = 1
    CREDIT = 2


class EntryKind(enum.IntEnum):
    """What a hash-chain entry records about a transfer."""

    POSTED = 1
    PENDING = 2
    HOLD_POSTED = 3
    VOIDED = 4
    EXPIRED = 5


@dataclass(frozen=True, slots=True)
class TransferCommand:
    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    currency: str
    amount_minor: int
    pending: bool
    hold_timeout_ms: int
    reference: str
    kind: TransferKind = TransferKind.STANDARD
    batch_id: uuid.UUID | None = None
    exchange_id: uuid.UUID | None = None
    # Set by the risk gate: what it decided, and for REVIEW a hold (pending) that waits for the case.
    risk: RiskRecord = NO_RISK_RECORD
    awaiting_review: bool = False
    # Set by the maker-checker gate: a hold (pending) that waits for ApproveTransfer / RejectTransfer.
    awaiting_approval: bool = False
    # ReverseTransfer: the transfer this one reverses.
    reversal_of_transfer_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    organization_id: uuid.UUID
    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    currency: str
    amount_minor: int
    kind: TransferKind
    status: TransferStatus
    reference: str
    pending: bool
    hold_timeout_ms: int
    posted_amount_minor: int
    hold_expires_at: dt.datetime | None
    void_reason: VoidReason
    batch_id: uuid.UUID | None
    exchange_id: uuid.UUID | None
    created_by_principal_id: str
    finalize_request_id: uuid.UUID | None
    sequence: int
    created_at: dt.datetime
    posted_at: dt.datetime | None
    finalized_at: dt.datetime | None
    risk: RiskRecord = NO_RISK_RECORD
    # For a reversal: the transfer it reverses.
    reversal_of_transfer_id: uuid.UUID | None = None
    # How much of the posted amount its posted reversals gave back. Derived from the reversals when read (posted
    # history is never edited); 0 where the reader did not ask (the commit path).
    reversed_amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class Posting:
    organization_id: uuid.UUID
    account_id: uuid.UUID
    posted_at: dt.datetime
    account_seq: int
    transfer_id: uuid.UUID
    side: EntrySide
    amount_minor: int
    counterparty_account_id: uuid.UUID
    posted_debits_after: int
    posted_credits_after: int


def parse_transfer(
    *,
    transfer_id: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: Money | None,
    pending: bool,
    hold_timeout_ms: int,
    reference: str,
    field_prefix: str = "",
    batch_id: uuid.UUID | None = None,
) -> tuple[TransferCommand | None, list[FieldViolation]]:
    """Validates one transfer request, collecting every violation (fields named with ``field_prefix``); an item of
    a batch carries its ``batch_id``."""
    violations: list[FieldViolation] = []
    p = field_prefix
    parsed_id = parse_uuid(transfer_id, f"{p}transfer_id", violations)
    debit = parse_uuid(debit_account_id, f"{p}debit_account_id", violations)
    credit = parse_uuid(credit_account_id, f"{p}credit_account_id", violations)
    if amount is None:
        violations.append(FieldViolation(f"{p}amount", "is required"))
    else:
        validate_money_field(f"{p}amount", amount.currency, amount.amount_minor, violations, positive=True)
    if hold_timeout_ms < 0 or hold_timeout_ms > limits.HOLD_TIMEOUT_S_MAX * 1000:
        violations.append(FieldViolation(f"{p}hold_timeout", f"must be between 0 and {limits.HOLD_TIMEOUT_S_MAX} s"))
    elif hold_timeout_ms and not pending:
        violations.append(FieldViolation(f"{p}hold_timeout", "is only allowed with pending"))
    if len(reference) > limits.REFERENCE_CHARS_MAX:
        violations.append(FieldViolation(f"{p}reference", f"must be at most {limits.REFERENCE_CHARS_MAX} characters"))
    if debit is not None and debit == credit:
        if not violations and not p:
            raise SameAccount()
        violations.append(FieldViolation(f"{p}credit_account_id", "must differ from debit_account_id"))
    if violations:
        return None, violations
    assert parsed_id is not None
    assert debit is not None
    assert credit is not None
    assert amount is not None
    timeout_ms = (hold_timeout_ms or limits.HOLD_TIMEOUT_S_DEFAULT * 1000) if pending else 0
    command = TransferCommand(
        transfer_id=parsed_id,
        debit_account_id=debit,
        credit_account_id=credit,
        currency=amount.currency,
        amount_minor=amount.amount_minor,
        pending=pending,
        hold_timeout_ms=timeout_ms,
        reference=reference,
        batch_id=batch_id,
    )
    return command, []


def parse_transfer_or_raise(**fields: object) -> TransferCommand:
    command, violations = parse_transfer(**fields)  # type: ignore[arg-type]
    if violations:
        raise invalid(violations)
    assert command is not None
    return command


def first_difference(command: TransferCommand, existing: Transfer) -> str | None:
    """The first request field in which a replayed command differs from the stored transfer."""
    checks: list[tuple[str, object, object]] = [
        ("debit_account_id", command.debit_account_id, existing.debit_account_id),
        ("credit_account_id", command.credit_account_id, existing.credit_account_id),
        ("amount.currency", command.currency, existing.currency),
        ("amount.amount_minor", command.amount_minor, existing.amount_minor),
        ("pending", command.pending, existing.pending),
        ("hold_timeout", command.hold_timeout_ms, existing.hold_timeout_ms),
        ("reference", command.reference, existing.reference),
        ("kind", command.kind, existing.kind),
    ]
    return first_differing_field(checks)


def _check_currency(command: TransferCommand, debit: Account, credit: Account) -> None:
    if debit.currency != command.currency:
        raise CurrencyMismatch("debit_account_id", debit.currency)
    if credit.currency != command.currency:
        raise CurrencyMismatch("credit_account_id", credit.currency)


def _check_debit_room(debit: Account, amount_minor: int, today: dt.date) -> None:
    if debit.balance_rule is BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS:
        available = debit.available_minor()
        if amount_minor > available:
            raise InsufficientFunds(str(debit.account_id), max(0, available))
    remaining = debit.outflow_remaining_on(today)
    if remaining is not None and amount_minor > remaining:
        raise DailyLimitExceeded(str(debit.account_id), remaining)


def _check_credit_room(credit: Account, amount_minor: int) -> None:
    if credit.balance_rule is BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
        b = credit.balances
        room = b.posted_debits_minor - b.posted_credits_minor - b.pending_credits_minor + credit.credit_limit_minor
        if amount_minor > room:
            raise CreditLimitExceeded(str(credit.account_id), max(0, room))


def _posting_time(account: Account, now: dt.datetime) -> dt.datetime:
    # Postings of one account must not go back in time even if the wall clock does (statement keyset order).
    if account.last_posted_at is not None and account.last_posted_at > now:
        return account.last_posted_at
    return now


def _post(
    debit: Account,
    credit: Account,
    transfer_id: uuid.UUID,
    amount_minor: int,
    now: dt.datetime,
    debit_outflow: tuple[dt.date, int] | None = None,
) -> tuple[Account, Account, list[Posting]]:
    """Moves posted money; the callers have checked the rules. ``debit_outflow`` (day, used) is set on the debit
    account in the same step (one copy of the account instead of two)."""
    postings: list[Posting] = []
    updated: list[Account] = []
    for account, side, counterparty in (
        (debit, EntrySide.DEBIT, credit.account_id),
        (credit, EntrySide.CREDIT, debit.account_id),
    ):
        b = account.balances
        debited = amount_minor if side is EntrySide.DEBIT else 0
        balances = Balances(
            b.posted_debits_minor + debited,
            b.posted_credits_minor + amount_minor - debited,
            b.pending_debits_minor,
            b.pending_credits_minor,
        )
        posted_at = _posting_time(account, now)
        seq = account.posting_count + 1
        postings.append(
            Posting(
                organization_id=account.organization_id,
                account_id=account.account_id,
                posted_at=posted_at,
                account_seq=seq,
                transfer_id=transfer_id,
                side=side,
                amount_minor=amount_minor,
                counterparty_account_id=counterparty,
                posted_debits_after=balances.posted_debits_minor,
                posted_credits_after=balances.posted_credits_minor,
            )
        )
        if side is EntrySide.DEBIT and debit_outflow is not None:
            day, used = debit_outflow
            account = evolve(
                account,
                balances=balances,
                posting_count=seq,
                last_posted_at=posted_at,
                outflow_day=day,
                outflow_used_minor=used,
            )
        else:
            account = evolve(account, balances=balances, posting_count=seq, last_posted_at=posted_at)
        updated.append(account)
    return updated[0], updated[1], postings


@dataclass(frozen=True, slots=True)
class Applied:
    """The result of applying one transfer or hold transition to its two accounts."""

    debit: Account
    credit: Account
    transfer: Transfer
    postings: list[Posting]
    entry_kind: EntryKind


def apply_transfer(
    organization_id: uuid.UUID,
    command: TransferCommand,
    debit: Account,
    credit: Account,
    *,
    created_by: str,
    now: dt.datetime,
) -> Applied:
    """Applies a new transfer (posted at once or held) or raises the decline."""
    assert debit.account_id == command.debit_account_id
    assert command.pending or not command.awaiting_review, "a transfer awaiting review is a hold"
    assert credit.account_id == command.credit_account_id
    assert command.pending or not command.awaiting_approval, "a transfer awaiting approval is a hold"
    _check_currency(command, debit, credit)
    ensure_usable(debit)
    ensure_usable(credit)
    today = now.date()
    _check_debit_room(debit, command.amount_minor, today)
    _check_credit_room(credit, command.amount_minor)
    used = debit.outflow_used_on(today) + command.amount_minor
    postings: list[Posting] = []
    if command.pending:
        amount = command.amount_minor
        db, cb = debit.balances, credit.balances
        debit = replace(
            debit,
            outflow_day=today,
            outflow_used_minor=used,
            balances=Balances(
                db.posted_debits_minor,
                db.posted_credits_minor,
                db.pending_debits_minor + amount,
                db.pending_credits_minor,
            ),
        )
        credit = replace(
            credit,
            balances=Balances(
                cb.posted_debits_minor,
                cb.posted_credits_minor,
                cb.pending_debits_minor,
                cb.pending_credits_minor + amount,
            ),
        )
    else:
        debit, credit, postings = _post(
            debit, credit, command.transfer_id, command.amount_minor, now, debit_outflow=(today, used)
        )
    transfer = Transfer(
        organization_id=organization_id,
        transfer_id=command.transfer_id,
        debit_account_id=command.debit_account_id,
        credit_account_id=command.credit_account_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        kind=command.kind,
        status=_initial_status(command),
        reference=command.reference,
        pending=command.pending,
        hold_timeout_ms=command.hold_timeout_ms,
        posted_amount_minor=0 if command.pending else command.amount_minor,
        hold_expires_at=now + dt.timedelta(milliseconds=command.hold_timeout_ms) if command.pending else None,
        void_reason=VoidReason.UNSPECIFIED,
        batch_id=command.batch_id,
        exchange_id=command.exchange_id,
        created_by_principal_id=created_by,
        finalize_request_id=None,
        sequence=0,
        created_at=now,
        posted_at=None if command.pending else now,
        finalized_at=None,
        risk=command.risk,
        reversal_of_transfer_id=command.reversal_of_transfer_id,
    )
    return Applied(debit, credit, transfer, postings, EntryKind.PENDING if command.pending else EntryKind.POSTED)


def _initial_status(command: TransferCommand) -> TransferStatus:
    if command.awaiting_review:
        return TransferStatus.AWAITING_REVIEW
    if command.awaiting_approval:
        return TransferStatus.AWAITING_APPROVAL
    return TransferStatus.PENDING if command.pending else TransferStatus.POSTED


class HoldAction(enum.Enum):
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class HoldTransition:
    action: HoldAction
    # POST: the amount to post (None = the whole hold). VOID: why.
    post_amount_minor: int | None = None
    void_reason: VoidReason = VoidReason.CLIENT_VOIDED
    request_id: uuid.UUID | None = None
    # Only the resolution of its risk case (ResolveTransferReview, naming the case) posts or voids a hold awaiting
    # review; expiry still releases it.
    review_case_id: uuid.UUID | None = None
    # ApproveTransfer / RejectTransfer: only they post or void a hold awaiting approval, and they touch nothing else;
    # expiry still releases it.
    approval: bool = False


def finalize_hold(
    transfer: Transfer, debit: Account, credit: Account, transition: HoldTransition, now: dt.datetime
) -> Applied:
    """Moves a hold to POSTED, VOIDED or EXPIRED and releases (or posts) what it reserved. Exactly one transition
    wins per hold: the callers hold both accounts' row locks and re-read the transfer under them."""
    if transfer.status not in HOLD_STATUSES:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)
    _check_review(transfer, transition)
    _check_approval(transfer, transition)
    held = transfer.amount_minor
    debit, credit = _release(debit, credit, held, transfer.created_at.date())
    finished = replace(transfer, finalize_request_id=transition.request_id, finalized_at=now)
    if transition.action is HoldAction.POST:
        amount = held if transition.post_amount_minor is None else transition.post_amount_minor
        if amount > held:
            raise HoldAmountExceeded(str(transfer.transfer_id), held)
        ensure_usable(debit)
        ensure_usable(credit)
        debit, credit, postings = _post(debit, credit, transfer.transfer_id, amount, now)
        # The posted part stays counted against the day's outflow of the day the hold was made.
        if debit.outflow_day == transfer.created_at.date():
            debit = replace(debit, outflow_used_minor=debit.outflow_used_minor + amount)
        posted = replace(finished, status=TransferStatus.POSTED, posted_amount_minor=amount, posted_at=now)
        return Applied(debit, credit, posted, postings, EntryKind.HOLD_POSTED)
    if transition.action is HoldAction.VOID:
        voided = replace(finished, status=TransferStatus.VOIDED, void_reason=transition.void_reason)
        return Applied(debit, credit, voided, [], EntryKind.VOIDED)
    expired = replace(finished, status=TransferStatus.EXPIRED)
    return Applied(debit, credit, expired, [], EntryKind.EXPIRED)


def _check_review(transfer: Transfer, transition: HoldTransition) -> None:
    awaiting_review = transfer.status is TransferStatus.AWAITING_REVIEW
    if transition.action is HoldAction.EXPIRE:
        return
    if awaiting_review and transition.review_case_id is None:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)
    if not awaiting_review and transition.review_case_id is not None:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)
    if awaiting_review and transition.review_case_id != transfer.risk.case_id:
        raise ReviewCaseMismatch(str(transfer.transfer_id))


def _check_approval(transfer: Transfer, transition: HoldTransition) -> None:
    if transition.action is HoldAction.EXPIRE:
        return
    awaiting_approval = transfer.status is TransferStatus.AWAITING_APPROVAL
    if awaiting_approval and not transition.approval:
        raise ApprovalRequired(str(transfer.transfer_id))
    if transition.approval and not awaiting_approval:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)


def _release(debit: Account, credit: Account, held: int, hold_day: dt.date) -> tuple[Account, Account]:
    db, cb = debit.balances, credit.balances
    assert db.pending_debits_minor >= held, "a hold reserves at least its amount"
    assert cb.pending_credits_minor >= held, "a hold reserves at least its amount"
    debit = replace(debit, balances=replace(db, pending_debits_minor=db.pending_debits_minor - held))
    credit = replace(credit, balances=replace(cb, pending_credits_minor=cb.pending_credits_minor - held))
    if debit.outflow_day == hold_day:
        debit = replace(debit, outflow_used_minor=max(0, debit.outflow_used_minor - held))
    return debit, credit
