"""Reversals (ReverseTransfer): the pure rules. No I/O.

A reversal is a new transfer from the original's credit account back to its debit account, of kind REVERSAL and
linked to the original; the transfer itself then goes through the same commit rules as any transfer (balances,
frozen accounts, limits) and the same pre-commit gate (risk, maker-checker). Posted history is never edited: what
the original "has reversed" is derived from its reversals, never written onto it.

What is left to reverse of an original is its posted amount minus the reversals that posted or are still held (a
reversal the risk gate holds for review, or one awaiting approval, reserves its amount until it posts, is voided or
expires). A reversal is itself a posted transfer, so it can be reversed in turn, up to its own amount.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from services.kit.errors import FieldViolation, first_differing_field, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.domain_accounts import Money, validate_money_field
from services.ledger.domain_transfers import Transfer, TransferCommand, TransferKind, TransferStatus
from services.ledger.errors import ReversalExceedsOriginal, TransferNotPosted


class ReversalReason(enum.IntEnum):
    """wallet.ledger.v1.ReversalReason."""

    CUSTOMER_REQUEST = 1
    DISPUTE_UPHELD = 2
    ERROR_CORRECTION = 3
    FRAUD = 4


@dataclass(frozen=True, slots=True)
class ReversalCommand:
    """A validated ReverseTransfer request. ``amount`` None: everything left to reverse."""

    transfer_id: uuid.UUID
    original_transfer_id: uuid.UUID
    amount: Money | None
    reason: ReversalReason
    complaint_id: uuid.UUID | None
    reference: str


@dataclass(frozen=True, slots=True)
class ReversalRecord:
    """What a committed ReverseTransfer call asked (stored beside its transfer, for replays and the audit)."""

    transfer_id: uuid.UUID
    original_transfer_id: uuid.UUID
    reason: ReversalReason
    complaint_id: uuid.UUID | None
    requested_amount_minor: int | None


@dataclass(frozen=True, slots=True)
class ReversalTotals:
    """An original's reversals, summed: ``reserved_minor`` counts those posted or still held (what is no longer left
    to reverse), ``reversed_minor`` only the posted ones (what the original shows as reversed)."""

    reserved_minor: int = 0
    reversed_minor: int = 0

    def __post_init__(self) -> None:
        assert 0 <= self.reversed_minor <= self.reserved_minor, "posted reversals are part of the reserved ones"


NO_REVERSALS = ReversalTotals()


def parse_reversal(
    *,
    transfer_id: str,
    original_transfer_id: str,
    amount: Money | None,
    reason: int,
    complaint_id: str,
    reference: str,
) -> ReversalCommand:
    """Validates a ReverseTransfer request, collecting every violation."""
    violations: list[FieldViolation] = []
    parsed_id = parse_uuid(transfer_id, "transfer_id", violations)
    original = parse_uuid(original_transfer_id, "original_transfer_id", violations)
    complaint = parse_uuid(complaint_id, "complaint_id", violations, required=False)
    if amount is not None:
        validate_money_field("amount", amount.currency, amount.amount_minor, violations, positive=True)
    if reason not in ReversalReason._value2member_map_:
        violations.append(FieldViolation("reason", "must be a known ReversalReason"))
    if len(reference) > limits.REFERENCE_CHARS_MAX:
        violations.append(FieldViolation("reference", f"must be at most {limits.REFERENCE_CHARS_MAX} characters"))
    if parsed_id is not None and parsed_id == original:
        violations.append(FieldViolation("transfer_id", "must differ from original_transfer_id"))
    if violations:
        raise invalid(violations)
    assert parsed_id is not None
    assert original is not None
    return ReversalCommand(parsed_id, original, amount, ReversalReason(reason), complaint, reference)


def ensure_reversible(original: Transfer) -> None:
    """Only posted money can be reversed: holds (pending, awaiting approval or review), voided and expired transfers
    are refused."""
    if original.status is not TransferStatus.POSTED:
        raise TransferNotPosted(str(original.transfer_id), original.status.name)
    assert original.posted_amount_minor > 0, "a posted transfer moved a positive amount"


def remaining_minor(original: Transfer, totals: ReversalTotals) -> int:
    """What is left to reverse of ``original``."""
    remaining = original.posted_amount_minor - totals.reserved_minor
    assert remaining >= 0, "reversals never exceed the original (checked under the original's row lock)"
    return remaining


def reversal_amount(command: ReversalCommand, original: Transfer, totals: ReversalTotals) -> int:
    """The amount to reverse: the requested one, or everything left; never more than is left."""
    ensure_reversible(original)
    if command.amount is not None and command.amount.currency != original.currency:
        raise invalid([FieldViolation("amount.currency", f"must be the original's currency {original.currency}")])
    remaining = remaining_minor(original, totals)
    wanted = remaining if command.amount is None else command.amount.amount_minor
    if wanted == 0 or wanted > remaining:
        raise ReversalExceedsOriginal(str(original.transfer_id), remaining)
    return wanted


def ensure_still_left(original: Transfer, totals: ReversalTotals, amount_minor: int) -> None:
    """Re-checked under the original's row lock: a concurrent reversal may have taken what was left meanwhile."""
    ensure_reversible(original)
    remaining = remaining_minor(original, totals)
    if amount_minor > remaining:
        raise ReversalExceedsOriginal(str(original.transfer_id), remaining)


def reversal_transfer(command: ReversalCommand, original: Transfer, amount_minor: int) -> TransferCommand:
    """The new transfer: the original's credit account back to its debit account, posted at once (the gate may
    still turn it into a hold awaiting review or approval)."""
    assert amount_minor > 0
    return TransferCommand(
        transfer_id=command.transfer_id,
        debit_account_id=original.credit_account_id,
        credit_account_id=original.debit_account_id,
        currency=original.currency,
        amount_minor=amount_minor,
        pending=False,
        hold_timeout_ms=0,
        reference=command.reference,
        kind=TransferKind.REVERSAL,
        reversal_of_transfer_id=original.transfer_id,
    )


def record_of(command: ReversalCommand) -> ReversalRecord:
    return ReversalRecord(
        transfer_id=command.transfer_id,
        original_transfer_id=command.original_transfer_id,
        reason=command.reason,
        complaint_id=command.complaint_id,
        requested_amount_minor=None if command.amount is None else command.amount.amount_minor,
    )


def replay_difference(command: ReversalCommand, record: ReversalRecord | None, stored: Transfer) -> str | None:
    """The first request field in which a replayed ReverseTransfer differs from the call that made ``stored``; a
    transfer id used by another kind of transfer differs in ``original_transfer_id``."""
    if record is None:
        return "original_transfer_id"
    requested = record_of(command)
    checks: list[tuple[str, object, object]] = [
        ("original_transfer_id", requested.original_transfer_id, record.original_transfer_id),
        ("amount.currency", stored.currency if command.amount is None else command.amount.currency, stored.currency),
        ("amount.amount_minor", requested.requested_amount_minor, record.requested_amount_minor),
        ("reason", requested.reason, record.reason),
        ("complaint_id", requested.complaint_id, record.complaint_id),
        ("reference", command.reference, stored.reference),
    ]
    return first_differing_field(checks)
