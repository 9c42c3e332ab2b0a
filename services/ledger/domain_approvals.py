"""Maker-checker: the tenant's approval policy and who may decide a transfer awaiting approval. Pure: no I/O.

A transfer debiting an account of a kind and currency the policy names, for more than the rule's threshold, does
not post: it becomes a hold with status AWAITING_APPROVAL (reserving the money like any hold, expiring like any
hold). A second member (permission `ledger.approvals.approve`) posts it in full (ApproveTransfer) or voids it
(RejectTransfer, void reason APPROVAL_REJECTED); the maker may do neither.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from services.kit.errors import FieldViolation
from services.ledger import limits
from services.ledger.currencies import CURRENCY_CODE_PATTERN
from services.ledger.domain_accounts import AccountKind, Money
from services.ledger.domain_transfers import Transfer, TransferCommand, TransferStatus
from services.ledger.errors import HoldNotPending, SelfApprovalForbidden


class ApprovalDecision(enum.IntEnum):
    APPROVED = 1
    REJECTED = 2


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    account_kind: AccountKind
    currency: str
    threshold_minor: int


@dataclass(frozen=True, slots=True)
class ApprovalRuleInput:
    account_kind: int
    currency: str
    threshold: Money | None


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    rules: tuple[ApprovalRule, ...]
    updated_at: dt.datetime | None
    updated_by_principal_id: str

    def threshold_for(self, account_kind: AccountKind, currency: str) -> int | None:
        for rule in self.rules:
            if rule.account_kind is account_kind and rule.currency == currency:
                return rule.threshold_minor
        return None

    def may_apply(self, currency: str, amount_minor: int) -> bool:
        """Whether any rule could hold this amount (so the debit account's kind is worth reading)."""
        return any(r.currency == currency and amount_minor > r.threshold_minor for r in self.rules)

    def needs_approval(self, account_kind: AccountKind, currency: str, amount_minor: int) -> bool:
        threshold = self.threshold_for(account_kind, currency)
        return threshold is not None and amount_minor > threshold


EMPTY_POLICY = ApprovalPolicy((), None, "")


def parse_rules(rules: list[ApprovalRuleInput]) -> tuple[tuple[ApprovalRule, ...], list[FieldViolation]]:
    """Validates a whole policy: known kinds, valid currencies matching the threshold, one rule per (kind, currency)."""
    violations: list[FieldViolation] = []
    if len(rules) > limits.APPROVAL_RULES_MAX:
        violations.append(FieldViolation("policy.rules", f"must hold at most {limits.APPROVAL_RULES_MAX} rules"))
        return (), violations
    parsed: list[ApprovalRule] = []
    seen: set[tuple[AccountKind, str]] = set()
    for index, rule in enumerate(rules):
        field = f"policy.rules[{index}]"
        before = len(violations)
        if rule.account_kind not in AccountKind._value2member_map_:
            violations.append(FieldViolation(f"{field}.account_kind", "is not a known account kind"))
        if not CURRENCY_CODE_PATTERN.match(rule.currency):
            violations.append(FieldViolation(f"{field}.currency", "must be 3 to 12 upper-case letters or digits"))
        if rule.threshold is None:
            violations.append(FieldViolation(f"{field}.threshold", "is required"))
        elif rule.threshold.currency != rule.currency:
            violations.append(FieldViolation(f"{field}.threshold.currency", "must be the rule's currency"))
        elif not 0 <= rule.threshold.amount_minor <= limits.TRANSFER_AMOUNT_MINOR_MAX:
            violations.append(
                FieldViolation(
                    f"{field}.threshold.amount_minor", f"must be between 0 and {limits.TRANSFER_AMOUNT_MINOR_MAX}"
                )
            )
        if len(violations) > before:
            continue
        assert rule.threshold is not None
        key = (AccountKind(rule.account_kind), rule.currency)
        if key in seen:
            violations.append(FieldViolation(field, "repeats an account kind and currency"))
            continue
        seen.add(key)
        parsed.append(ApprovalRule(key[0], key[1], rule.threshold.amount_minor))
    return tuple(parsed), violations


def held_for_approval(command: TransferCommand, default_hold_timeout_ms: int) -> TransferCommand:
    """The transfer as a hold awaiting approval. A client-requested hold keeps its timeout; a direct transfer waits
    the default hold time. Approval posts the whole amount."""
    timeout_ms = command.hold_timeout_ms if command.pending else default_hold_timeout_ms
    return replace(command, pending=True, hold_timeout_ms=timeout_ms, awaiting_approval=True)


def ensure_may_decide(transfer: Transfer, principal_id: str, now: dt.datetime) -> None:
    """A different principal decides a transfer that still awaits approval and has not run out of time."""
    if transfer.status is not TransferStatus.AWAITING_APPROVAL:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)
    if transfer.hold_expires_at is not None and transfer.hold_expires_at <= now:
        raise HoldNotPending(str(transfer.transfer_id), TransferStatus.EXPIRED.name)
    if transfer.created_by_principal_id == principal_id:
        raise SelfApprovalForbidden(str(transfer.transfer_id))
