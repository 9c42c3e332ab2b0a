"""The rule language: a JSON document validated and compiled at publish time into plain Python closures (no eval).

    {
      "thresholds": {"challenge": 30, "review": 60, "deny": 90},
      "anomaly_model": "shadow",
      "lists": {"risky_channels": ["WEB"]},
      "rules": [
        {"id": "velocity_1h", "reason": "VELOCITY_1H", "weight": 35,
         "when": {"feature": "account.outflow_count.1h", "op": ">=", "value": 10}},
        {"id": "structuring", "reason": "STRUCTURING", "weight": 0, "outcome": "REVIEW",
         "when": {"all": [{"feature": "payment.near_threshold", "op": "==", "value": true},
                          {"feature": "account.near_threshold_count.24h", "op": ">=", "value": 2}]}}
      ]
    }

Every rule whose condition holds adds its weight to the score (capped at 100) and its reason code to the answer, in
rule order; an ``outcome`` makes that decision the minimum. The score then meets the thresholds. Validation collects
every problem with a path into the document (``document.rules[1].when.all[0].feature``). Pure: no I/O.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from services.kit.errors import FieldViolation, InvalidArgument
from services.risk import limits
from services.risk.domain import Decision, RuleFormat
from services.risk.features import FEATURE_CATALOG, FeatureKind, FeatureValue

Condition = Callable[[Mapping[str, FeatureValue]], bool]

ANOMALY_MODES = ("shadow", "active")
THRESHOLD_NAMES = ("challenge", "review", "deny")
TOP_LEVEL_KEYS = frozenset({"thresholds", "anomaly_model", "lists", "rules"})
RULE_KEYS = frozenset({"id", "reason", "weight", "when", "outcome", "description"})
COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
ORDERING_OPS = frozenset({">", ">=", "<", "<="})
MEMBERSHIP_OPS = frozenset({"in", "not_in"})
OUTCOMES: Mapping[str, Decision] = {
    "CHALLENGE": Decision.CHALLENGE,
    "REVIEW": Decision.REVIEW,
    "DENY": Decision.DENY,
}
_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_LIST_NAME = _RULE_ID


class RulesInvalid(InvalidArgument):
    reason = "RULES_INVALID"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str
    reason_code: str
    weight: int
    outcome: Decision | None
    condition: Condition


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    decision: Decision
    score: int
    reason_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    challenge_at: int
    review_at: int
    deny_at: int
    anomaly_active: bool
    rules: tuple[CompiledRule, ...]

    def decision_for(self, score: int) -> Decision:
        if score >= self.deny_at:
            return Decision.DENY
        if score >= self.review_at:
            return Decision.REVIEW
        if score >= self.challenge_at:
            return Decision.CHALLENGE
        return Decision.ALLOW

    def evaluate(self, features: Mapping[str, FeatureValue]) -> RuleOutcome:
        score = 0
        floor = Decision.ALLOW
        reasons: list[str] = []
        for rule in self.rules:
            if not rule.condition(features):
                continue
            score += rule.weight
            reasons.append(rule.reason_code)
            if rule.outcome is not None and rule.outcome.severity > floor.severity:
                floor = rule.outcome
        score = min(score, limits.SCORE_MAX)
        decision = self.decision_for(score)
        if floor.severity > decision.severity:
            decision = floor
        return RuleOutcome(decision=decision, score=score, reason_codes=tuple(reasons))


def parse_document(document: str, rule_format: RuleFormat) -> Any:
    if len(document.encode()) > limits.RULES_DOCUMENT_BYTES_MAX:
        raise RulesInvalid(
            "rule set is too large",
            field_violations=[FieldViolation("document", f"at most {limits.RULES_DOCUMENT_BYTES_MAX} bytes")],
        )
    if rule_format is not RuleFormat.JSON:
        raise RulesInvalid(
            "only JSON rule sets are supported",
            field_violations=[FieldViolation("format", "must be RULE_FORMAT_JSON")],
        )
    try:
        return json.loads(document)
    except ValueError as err:
        raise RulesInvalid(
            "rule set is not valid JSON",
            field_violations=[FieldViolation("document", f"not valid JSON: {err}")],
        ) from None


def compile_document(document: str, rule_format: RuleFormat) -> CompiledRuleSet:
    """Validates the whole document (every violation, not just the first) and compiles it."""
    return _Compiler().compile(parse_document(document, rule_format))


class _Compiler:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self.lists: dict[str, tuple[FeatureValue, ...]] = {}

    def fail(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def compile(self, body: Any) -> CompiledRuleSet:
        root = "document"
        if not isinstance(body, dict):
            raise RulesInvalid(
                "rule set must be an object", field_violations=[FieldViolation(root, "must be a JSON object")]
            )
        for key in sorted(set(body) - TOP_LEVEL_KEYS):
            self.fail(f"{root}.{key}", "unknown field")
        thresholds = self._thresholds(body.get("thresholds"), f"{root}.thresholds")
        anomaly_mode = body.get("anomaly_model", "shadow")
        if anomaly_mode not in ANOMALY_MODES:
            self.fail(f"{root}.anomaly_model", f"must be one of {', '.join(ANOMALY_MODES)}")
        self._lists(body.get("lists", {}), f"{root}.lists")
        rules = self._rules(body.get("rules"), f"{root}.rules")
        if self.violations:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            raise RulesInvalid(f"rule set is invalid: {summary}", field_violations=self.violations)
        return CompiledRuleSet(
            challenge_at=thresholds[0],
            review_at=thresholds[1],
            deny_at=thresholds[2],
            anomaly_active=anomaly_mode == "active",
            rules=tuple(rules),
        )

    def _thresholds(self, raw: Any, path: str) -> tuple[int, int, int]:
        if not isinstance(raw, dict):
            self.fail(path, "is required: an object with challenge, review and deny scores")
            return (1, 2, 3)
        for key in sorted(set(raw) - set(THRESHOLD_NAMES)):
            self.fail(f"{path}.{key}", "unknown field")
        values: list[int] = []
        for name in THRESHOLD_NAMES:
            value = raw.get(name)
            if _is_int(value) and 1 <= value <= limits.SCORE_MAX:
                values.append(value)
            else:
                self.fail(f"{path}.{name}", f"must be an integer score from 1 to {limits.SCORE_MAX}")
        if len(values) != len(THRESHOLD_NAMES):
            return (1, 2, 3)
        if not values[0] < values[1] < values[2]:
            self.fail(path, "out of order: must be challenge < review < deny")
        return (values[0], values[1], values[2])

    def _lists(self, raw: Any, path: str) -> None:
        if not isinstance(raw, dict):
            self.fail(path, "must be an object of named value lists")
            return
        for name, values in raw.items():
            if not isinstance(name, str) or not _LIST_NAME.match(name):
                self.fail(f"{path}.{name}", "list names are lower_snake_case")
                continue
            if not isinstance(values, list) or len(values) > limits.RULE_LIST_VALUES_MAX:
                self.fail(f"{path}.{name}", f"must be an array of at most {limits.RULE_LIST_VALUES_MAX} values")
                continue
            if not all(isinstance(v, str) or _is_int(v) for v in values):
                self.fail(f"{path}.{name}", "values must be strings or integers")
                continue
            self.lists[name] = tuple(values)

    def _rules(self, raw: Any, path: str) -> list[CompiledRule]:
        if not isinstance(raw, list):
            self.fail(path, "is required: an array of rules")
            return []
        if len(raw) > limits.RULES_COUNT_MAX:
            self.fail(path, f"at most {limits.RULES_COUNT_MAX} rules")
            return []
        compiled: list[CompiledRule] = []
        seen: set[str] = set()
        for index, rule in enumerate(raw):
            rule_path = f"{path}[{index}]"
            result = self._rule(rule, rule_path)
            if result is None:
                continue
            if result.rule_id in seen:
                self.fail(f"{rule_path}.id", f"duplicate rule id {result.rule_id!r}")
            seen.add(result.rule_id)
            compiled.append(result)
        return compiled

    def _rule(self, raw: Any, path: str) -> CompiledRule | None:
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        before = len(self.violations)
        for key in sorted(set(raw) - RULE_KEYS):
            self.fail(f"{path}.{key}", "unknown field")
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id) or len(rule_id) > limits.RULE_ID_LENGTH_MAX:
            self.fail(f"{path}.id", "is required: lower_snake_case, at most 64 characters")
        reason = raw.get("reason")
        if (
            not isinstance(reason, str)
            or not _REASON_CODE.match(reason)
            or len(reason) > limits.REASON_CODE_LENGTH_MAX
        ):
            self.fail(f"{path}.reason", "is required: an app-safe UPPER_SNAKE_CASE code")
        weight = raw.get("weight", 0)
        if not _is_int(weight) or not 0 <= weight <= limits.SCORE_MAX:
            self.fail(f"{path}.weight", f"must be an integer from 0 to {limits.SCORE_MAX}")
        outcome_name = raw.get("outcome")
        outcome = None
        if outcome_name is not None:
            outcome = OUTCOMES.get(outcome_name) if isinstance(outcome_name, str) else None
            if outcome is None:
                self.fail(f"{path}.outcome", f"must be one of {', '.join(OUTCOMES)}")
        description = raw.get("description", "")
        if not isinstance(description, str):
            self.fail(f"{path}.description", "must be a string")
        if "when" not in raw:
            self.fail(f"{path}.when", "is required")
            return None
        condition = self._condition(raw["when"], f"{path}.when", depth=1)
        if len(self.violations) > before or condition is None:
            return None
        assert isinstance(rule_id, str)
        assert isinstance(reason, str)
        assert isinstance(weight, int)
        return CompiledRule(rule_id, reason, weight, outcome, condition)

    def _condition(self, raw: Any, path: str, depth: int) -> Condition | None:
        if depth > limits.RULE_CONDITION_DEPTH_MAX:
            self.fail(path, f"conditions nest at most {limits.RULE_CONDITION_DEPTH_MAX} deep")
            return None
        if not isinstance(raw, dict):
            self.fail(path, "must be an object")
            return None
        if "all" in raw or "any" in raw:
            return self._group(raw, path, depth)
        if "not" in raw:
            if set(raw) != {"not"}:
                self.fail(path, "a not-condition has only the field 'not'")
                return None
            inner = self._condition(raw["not"], f"{path}.not", depth + 1)
            return None if inner is None else _negate(inner)
        return self._comparison(raw, path)

    def _group(self, raw: dict[str, Any], path: str, depth: int) -> Condition | None:
        key = "all" if "all" in raw else "any"
        if len(raw) != 1:
            self.fail(path, f"a group has only the field '{key}'")
            return None
        members = raw[key]
        if not isinstance(members, list) or not 1 <= len(members) <= limits.RULE_CONDITIONS_PER_GROUP_MAX:
            self.fail(f"{path}.{key}", f"must be an array of 1 to {limits.RULE_CONDITIONS_PER_GROUP_MAX} conditions")
            return None
        compiled = [self._condition(member, f"{path}.{key}[{i}]", depth + 1) for i, member in enumerate(members)]
        parts = [c for c in compiled if c is not None]
        if len(parts) != len(compiled):
            return None
        return _all_of(parts) if key == "all" else _any_of(parts)

    def _comparison(self, raw: dict[str, Any], path: str) -> Condition | None:
        allowed = {"feature", "op", "value", "list", "values"}
        for key in sorted(set(raw) - allowed):
            self.fail(f"{path}.{key}", "unknown field")
        name = raw.get("feature")
        kind = FEATURE_CATALOG.get(name) if isinstance(name, str) else None
        if kind is None:
            self.fail(f"{path}.feature", f"unknown feature {name!r}")
        op = raw.get("op")
        if op not in COMPARISONS and op not in MEMBERSHIP_OPS:
            self.fail(f"{path}.op", "must be one of >, >=, <, <=, ==, !=, in, not_in")
            return None
        if kind is None or not isinstance(name, str):
            return None
        if op in MEMBERSHIP_OPS:
            return self._membership(raw, path, name, kind, op == "in")
        value = raw.get("value")
        if not _value_fits(kind, value, ordering=op in ORDERING_OPS):
            self.fail(f"{path}.value", f"must be a {kind.value} value that {op} can compare")
            return None
        assert isinstance(op, str)
        return _compare(name, COMPARISONS[op], value)

    def _membership(
        self, raw: dict[str, Any], path: str, name: str, kind: FeatureKind, positive: bool
    ) -> Condition | None:
        if kind not in (FeatureKind.TEXT, FeatureKind.INTEGER):
            self.fail(f"{path}.op", "in / not_in apply to text and integer features")
            return None
        values: Sequence[FeatureValue] | None = None
        if "list" in raw:
            values = self.lists.get(raw["list"]) if isinstance(raw["list"], str) else None
            if values is None:
                self.fail(f"{path}.list", f"unknown list {raw['list']!r} (declare it under lists)")
                return None
        elif isinstance(raw.get("values"), list):
            values = tuple(raw["values"])
        else:
            self.fail(f"{path}.values", "in / not_in need 'list' (a declared list) or 'values' (an array)")
            return None
        if not all(_value_fits(kind, v, ordering=False) for v in values):
            self.fail(path, f"list values must be {kind.value} values")
            return None
        return _member(name, frozenset(values), positive)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _value_fits(kind: FeatureKind, value: Any, *, ordering: bool) -> bool:
    if kind is FeatureKind.BOOLEAN:
        return isinstance(value, bool) and not ordering
    if kind is FeatureKind.TEXT:
        return isinstance(value, str) and not ordering
    return _is_int(value) or (kind is FeatureKind.REAL and isinstance(value, float))


# The closures below are what a compiled rule set is made of. Missing features compare as False (never raise).


def _compare(name: str, compare: Callable[[Any, Any], bool], expected: Any) -> Condition:
    def condition(features: Mapping[str, FeatureValue]) -> bool:
        actual = features.get(name)
        return actual is not None and compare(actual, expected)

    return condition


def _member(name: str, values: frozenset[FeatureValue], positive: bool) -> Condition:
    def condition(features: Mapping[str, FeatureValue]) -> bool:
        return (features.get(name) in values) is positive

    return condition


def _negate(inner: Condition) -> Condition:
    return lambda features: not inner(features)


def _all_of(parts: list[Condition]) -> Condition:
    members = tuple(parts)
    return lambda features: all(part(features) for part in members)


def _any_of(parts: list[Condition]) -> Condition:
    members = tuple(parts)
    return lambda features: any(part(features) for part in members)
