"""Pure maker-checker rules: policy validation at the limits, thresholds, the hold awaiting approval, and who may
decide it (the hold state machine refuses every other way)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest

from services.ledger import limits
from services.ledger.domain_accounts import AccountKind, BalanceRule, Money, OpenAccountCommand, new_account
from services.ledger.domain_approvals import (
    ApprovalPolicy,
    ApprovalRule,
    ApprovalRuleInput,
    ensure_may_decide,
    held_for_approval,
    parse_rules,
)
from services.ledger.domain_transfers import (
    HoldAction,
    HoldTransition,
    TransferCommand,
    TransferStatus,
    VoidReason,
    apply_transfer,
    finalize_hold,
)
from services.ledger.errors import ApprovalRequired, HoldNotPending, SelfApprovalForbidden

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
ORG = uuid.uuid4()


def _rule(kind: int = AccountKind.OPERATING, currency: str = "EUR", threshold: int = 100) -> ApprovalRuleInput:
    return ApprovalRuleInput(kind, currency, Money(currency, threshold))


def _account(rule: BalanceRule = BalanceRule.NONE):  # type: ignore[no-untyped-def]
    command = OpenAccountCommand(uuid.uuid4(), None, AccountKind.OPERATING, "EUR", rule, 0, None, "")
    return new_account(ORG, command, NOW)


def _awaiting(amount_minor: int = 500):  # type: ignore[no-untyped-def]
    debit, credit = _account(), _account()
    command = TransferCommand(uuid.uuid4(), debit.account_id, credit.account_id, "EUR", amount_minor, False, 0, "")
    held = held_for_approval(command, 60_000)
    applied = apply_transfer(ORG, held, debit, credit, created_by="maker", now=NOW)
    return applied


def test_rules_validate_each_field_and_refuse_duplicates() -> None:
    rules, violations = parse_rules([_rule(), _rule(AccountKind.CUSTOMER_WALLET, "USD", 0)])
    assert violations == []
    assert rules[1] == ApprovalRule(AccountKind.CUSTOMER_WALLET, "USD", 0)
    _, violations = parse_rules([_rule(), _rule(threshold=5)])
    assert [v.field for v in violations] == ["policy.rules[1]"]
    _, violations = parse_rules([_rule(kind=0), _rule(currency="eu"), _rule(threshold=-1)])
    assert [v.field for v in violations] == [
        "policy.rules[0].account_kind",
        "policy.rules[1].currency",
        "policy.rules[2].threshold.amount_minor",
    ]
    _, violations = parse_rules([ApprovalRuleInput(AccountKind.OPERATING, "EUR", None)])
    assert [v.field for v in violations] == ["policy.rules[0].threshold"]
    _, violations = parse_rules([ApprovalRuleInput(AccountKind.OPERATING, "EUR", Money("USD", 1))])
    assert [v.field for v in violations] == ["policy.rules[0].threshold.currency"]


def test_rule_count_at_max_and_max_plus_one() -> None:
    kinds = list(AccountKind)
    at_max = [_rule(kinds[i % len(kinds)], f"C{i:03d}") for i in range(limits.APPROVAL_RULES_MAX)]
    assert parse_rules(at_max)[1] == []
    assert [v.field for v in parse_rules([*at_max, _rule(currency="XXXX")])[1]] == ["policy.rules"]


def test_threshold_is_strictly_above() -> None:
    policy = ApprovalPolicy((ApprovalRule(AccountKind.OPERATING, "EUR", 100),), NOW, "owner")
    assert not policy.needs_approval(AccountKind.OPERATING, "EUR", 100)
    assert policy.needs_approval(AccountKind.OPERATING, "EUR", 101)
    assert not policy.needs_approval(AccountKind.CUSTOMER_WALLET, "EUR", 10**9)
    assert not policy.needs_approval(AccountKind.OPERATING, "USD", 10**9)
    assert policy.may_apply("EUR", 101)
    assert not policy.may_apply("EUR", 100)


def test_held_for_approval_keeps_a_client_hold_timeout() -> None:
    direct = TransferCommand(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "EUR", 5, False, 0, "")
    assert held_for_approval(direct, 9_000).hold_timeout_ms == 9_000
    hold = replace(direct, pending=True, hold_timeout_ms=3_000)
    held = held_for_approval(hold, 9_000)
    assert (held.pending, held.hold_timeout_ms, held.awaiting_approval) == (True, 3_000, True)


def test_transfer_awaiting_approval_reserves_like_a_hold() -> None:
    applied = _awaiting(500)
    assert applied.transfer.status is TransferStatus.AWAITING_APPROVAL
    assert applied.debit.balances.pending_debits_minor == 500
    assert applied.transfer.hold_expires_at == NOW + dt.timedelta(minutes=1)


def test_only_approval_transitions_finish_it_and_expiry_still_does() -> None:
    applied = _awaiting()
    transfer, debit, credit = applied.transfer, applied.debit, applied.credit
    for action in (HoldAction.POST, HoldAction.VOID):
        with pytest.raises(ApprovalRequired):
            finalize_hold(transfer, debit, credit, HoldTransition(action), NOW)
    posted = finalize_hold(transfer, debit, credit, HoldTransition(HoldAction.POST, approval=True), NOW)
    assert posted.transfer.status is TransferStatus.POSTED
    assert posted.transfer.posted_amount_minor == 500
    voided = finalize_hold(
        transfer,
        debit,
        credit,
        HoldTransition(HoldAction.VOID, void_reason=VoidReason.APPROVAL_REJECTED, approval=True),
        NOW,
    )
    assert voided.transfer.void_reason is VoidReason.APPROVAL_REJECTED
    expired = finalize_hold(transfer, debit, credit, HoldTransition(HoldAction.EXPIRE), NOW)
    assert expired.transfer.status is TransferStatus.EXPIRED
    # An approval cannot finish an ordinary hold.
    ordinary = replace(transfer, status=TransferStatus.PENDING)
    with pytest.raises(HoldNotPending):
        finalize_hold(ordinary, debit, credit, HoldTransition(HoldAction.POST, approval=True), NOW)


def test_who_may_decide() -> None:
    transfer = _awaiting().transfer
    ensure_may_decide(transfer, "approver", NOW)
    with pytest.raises(SelfApprovalForbidden):
        ensure_may_decide(transfer, "maker", NOW)
    assert transfer.hold_expires_at is not None
    with pytest.raises(HoldNotPending):
        ensure_may_decide(transfer, "approver", transfer.hold_expires_at)
    with pytest.raises(HoldNotPending):
        ensure_may_decide(replace(transfer, status=TransferStatus.POSTED), "approver", NOW)
