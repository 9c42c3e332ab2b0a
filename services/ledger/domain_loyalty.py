"""Loyalty points: the tenant's earn rules and what one posted transfer earns. Pure: no I/O.

A posted transfer out of a customer's account, of a kind a rule names, in the rule's spend currency, earns
``floor(posted / spend_step_minor) x points_per_step`` points of the rule's asset, paid from the rule's funding
account into the customer's points account. Awards are idempotent by construction: the award transfer's id is
derived from the event id and the rule id, so a redelivered event replays the same transfer instead of paying twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.kit.errors import FieldViolation
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.currencies import CURRENCY_CODE_PATTERN
from services.ledger.domain_transfers import TransferKind

# Namespaces of the derived ids (uuid5): fixed forever, or awards would be paid again.
_AWARD_NAMESPACE = uuid.UUID("6f1b7c2e-3f0a-5d7e-9b1c-4a2d8e6f0a11")
_POINTS_ACCOUNT_NAMESPACE = uuid.UUID("0c9e5a4b-7d21-5f3e-8a6c-1b2d3e4f5a60")
# Kinds that can never earn: an award must not earn more awards.
_NEVER_EARNING = frozenset({TransferKind.LOYALTY_EARN})


@dataclass(frozen=True, slots=True)
class EarnRule:
    earn_rule_id: uuid.UUID
    asset_code: str
    spend_currency: str
    transfer_kinds: tuple[TransferKind, ...]
    points_per_step: int
    spend_step_minor: int
    funding_account_id: uuid.UUID

    def points_for(self, kind: TransferKind, currency: str, posted_minor: int) -> int:
        if kind not in self.transfer_kinds or currency != self.spend_currency:
            return 0
        return min((posted_minor // self.spend_step_minor) * self.points_per_step, limits.TRANSFER_AMOUNT_MINOR_MAX)


@dataclass(frozen=True, slots=True)
class EarnRuleInput:
    earn_rule_id: str
    asset_code: str
    spend_currency: str
    transfer_kinds: list[int]
    points_per_step: int
    spend_step_minor: int
    funding_account_id: str


@dataclass(frozen=True, slots=True)
class PostedSpend:
    """What the consumer needs from a TransferPosted event."""

    organization_id: uuid.UUID
    event_id: uuid.UUID
    transfer_id: uuid.UUID
    customer_id: uuid.UUID
    kind: TransferKind
    currency: str
    posted_minor: int


def parse_earn_rules(rules: list[EarnRuleInput]) -> tuple[tuple[EarnRule, ...], list[FieldViolation]]:
    violations: list[FieldViolation] = []
    if len(rules) > limits.EARN_RULES_MAX:
        violations.append(FieldViolation("earn_rules", f"must hold at most {limits.EARN_RULES_MAX} rules"))
        return (), violations
    parsed: list[EarnRule] = []
    seen: set[uuid.UUID] = set()
    for index, rule in enumerate(rules):
        earn_rule = _parse_rule(f"earn_rules[{index}]", rule, violations)
        if earn_rule is None:
            continue
        if earn_rule.earn_rule_id in seen:
            violations.append(FieldViolation(f"earn_rules[{index}].earn_rule_id", "repeats another rule's id"))
            continue
        seen.add(earn_rule.earn_rule_id)
        parsed.append(earn_rule)
    return tuple(parsed), violations


def _parse_rule(field: str, rule: EarnRuleInput, violations: list[FieldViolation]) -> EarnRule | None:
    before = len(violations)
    rule_id = parse_uuid(rule.earn_rule_id, f"{field}.earn_rule_id", violations)
    funding = parse_uuid(rule.funding_account_id, f"{field}.funding_account_id", violations)
    for name, code in (("asset_code", rule.asset_code), ("spend_currency", rule.spend_currency)):
        if not CURRENCY_CODE_PATTERN.match(code):
            violations.append(FieldViolation(f"{field}.{name}", "must be 3 to 12 upper-case letters or digits"))
    if rule.asset_code == rule.spend_currency:
        violations.append(FieldViolation(f"{field}.asset_code", "must differ from spend_currency"))
    kinds = _parse_kinds(f"{field}.transfer_kinds", rule.transfer_kinds, violations)
    for name, value in (("points_per_step", rule.points_per_step), ("spend_step_minor", rule.spend_step_minor)):
        if not 0 < value <= limits.TRANSFER_AMOUNT_MINOR_MAX:
            violations.append(
                FieldViolation(f"{field}.{name}", f"must be between 1 and {limits.TRANSFER_AMOUNT_MINOR_MAX}")
            )
    if len(violations) > before:
        return None
    assert rule_id is not None
    assert funding is not None
    return EarnRule(
        rule_id, rule.asset_code, rule.spend_currency, kinds, rule.points_per_step, rule.spend_step_minor, funding
    )


def _parse_kinds(field: str, values: list[int], violations: list[FieldViolation]) -> tuple[TransferKind, ...]:
    if not values:
        violations.append(FieldViolation(field, "must name at least one transfer kind"))
        return ()
    kinds: list[TransferKind] = []
    for value in values:
        if value not in TransferKind._value2member_map_:
            violations.append(FieldViolation(field, f"{value} is not a known transfer kind"))
        elif TransferKind(value) in _NEVER_EARNING:
            violations.append(FieldViolation(field, f"{TransferKind(value).name} never earns points"))
        elif TransferKind(value) not in kinds:
            kinds.append(TransferKind(value))
    return tuple(kinds)


def award_transfer_id(event_id: uuid.UUID, earn_rule_id: uuid.UUID) -> uuid.UUID:
    """The id of the points transfer one event earns under one rule: the same on every delivery."""
    return uuid.uuid5(_AWARD_NAMESPACE, f"{event_id}:{earn_rule_id}")


def points_account_id(organization_id: uuid.UUID, customer_id: uuid.UUID, asset_code: str) -> uuid.UUID:
    """The customer's points account in one asset, opened on its first award."""
    return uuid.uuid5(_POINTS_ACCOUNT_NAMESPACE, f"{organization_id}:{customer_id}:{asset_code}")
