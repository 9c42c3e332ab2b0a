"""Proto ⇄ domain conversions for loyalty earn rules (and nothing else)."""

from __future__ import annotations

from services.ledger.domain_loyalty import EarnRule, EarnRuleInput
from wallet.ledger.v1 import ledger_assets_pb2 as pb


def rules_in(rules: list[pb.EarnRule]) -> list[EarnRuleInput]:
    return [
        EarnRuleInput(
            earn_rule_id=rule.earn_rule_id,
            asset_code=rule.asset_code,
            spend_currency=rule.spend_currency,
            transfer_kinds=[int(k) for k in rule.transfer_kinds],
            points_per_step=rule.points_per_step,
            spend_step_minor=rule.spend_step_minor,
            funding_account_id=rule.funding_account_id,
        )
        for rule in rules
    ]


def rules_out(rules: tuple[EarnRule, ...]) -> list[pb.EarnRule]:
    return [
        pb.EarnRule(
            earn_rule_id=str(rule.earn_rule_id),
            asset_code=rule.asset_code,
            spend_currency=rule.spend_currency,
            transfer_kinds=[int(k) for k in rule.transfer_kinds],  # type: ignore[misc]
            points_per_step=rule.points_per_step,
            spend_step_minor=rule.spend_step_minor,
            funding_account_id=str(rule.funding_account_id),
        )
        for rule in rules
    ]
