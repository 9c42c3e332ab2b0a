"""Pure loyalty rules: validation at the limits, what a spend earns, and the derived (replay-safe) ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.ledger import limits
from services.ledger.domain_loyalty import (
    EarnRule,
    EarnRuleInput,
    award_transfer_id,
    parse_earn_rules,
    points_account_id,
)
from services.ledger.domain_transfers import TransferKind


def _input(**overrides: object) -> EarnRuleInput:
    fields: dict[str, object] = {
        "earn_rule_id": str(uuid.uuid4()),
        "asset_code": "PTS",
        "spend_currency": "EUR",
        "transfer_kinds": [int(TransferKind.CARD_PAYMENT)],
        "points_per_step": 1,
        "spend_step_minor": 100,
        "funding_account_id": str(uuid.uuid4()),
    }
    fields.update(overrides)
    return EarnRuleInput(**fields)  # type: ignore[arg-type]


def _fields(*rules: EarnRuleInput) -> list[str]:
    return [v.field for v in parse_earn_rules(list(rules))[1]]


def test_valid_rule_and_each_bad_field() -> None:
    rules, violations = parse_earn_rules([_input(transfer_kinds=[6, 6, 3])])
    assert violations == []
    assert rules[0].transfer_kinds == (TransferKind.CARD_PAYMENT, TransferKind.INVOICE_PAYMENT)
    assert _fields(_input(earn_rule_id="x")) == ["earn_rules[0].earn_rule_id"]
    assert _fields(_input(asset_code="pts")) == ["earn_rules[0].asset_code"]
    assert _fields(_input(asset_code="EUR")) == ["earn_rules[0].asset_code"]
    assert _fields(_input(transfer_kinds=[])) == ["earn_rules[0].transfer_kinds"]
    assert _fields(_input(transfer_kinds=[99])) == ["earn_rules[0].transfer_kinds"]
    assert _fields(_input(transfer_kinds=[int(TransferKind.LOYALTY_EARN)])) == ["earn_rules[0].transfer_kinds"]
    assert _fields(_input(points_per_step=0)) == ["earn_rules[0].points_per_step"]
    assert _fields(_input(spend_step_minor=limits.TRANSFER_AMOUNT_MINOR_MAX + 1)) == [
        "earn_rules[0].spend_step_minor"
    ]
    same = str(uuid.uuid4())
    assert _fields(_input(earn_rule_id=same), _input(earn_rule_id=same)) == ["earn_rules[1].earn_rule_id"]


def test_rule_count_at_max_and_max_plus_one() -> None:
    at_max = [_input() for _ in range(limits.EARN_RULES_MAX)]
    assert _fields(*at_max) == []
    assert _fields(*at_max, _input()) == ["earn_rules"]


@given(st.integers(0, 10**12), st.integers(1, 10_000), st.integers(1, 1_000))
def test_points_are_whole_steps_times_points(posted: int, step: int, points: int) -> None:
    rule = EarnRule(uuid.uuid4(), "PTS", "EUR", (TransferKind.STANDARD,), points, step, uuid.uuid4())
    earned = rule.points_for(TransferKind.STANDARD, "EUR", posted)
    assert earned == (posted // step) * points
    assert earned <= posted * points
    assert rule.points_for(TransferKind.CARD_PAYMENT, "EUR", posted) == 0
    assert rule.points_for(TransferKind.STANDARD, "USD", posted) == 0


def test_points_are_capped_at_the_transfer_maximum() -> None:
    rule = EarnRule(uuid.uuid4(), "PTS", "EUR", (TransferKind.STANDARD,), 10**9, 1, uuid.uuid4())
    assert rule.points_for(TransferKind.STANDARD, "EUR", 10**9) == limits.TRANSFER_AMOUNT_MINOR_MAX


def test_derived_ids_are_stable_and_distinct() -> None:
    event, rule, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert award_transfer_id(event, rule) == award_transfer_id(event, rule)
    assert award_transfer_id(event, rule) != award_transfer_id(event, other)
    org, customer = uuid.uuid4(), uuid.uuid4()
    assert points_account_id(org, customer, "PTS") == points_account_id(org, customer, "PTS")
    assert points_account_id(org, customer, "PTS") != points_account_id(org, customer, "MILES")
