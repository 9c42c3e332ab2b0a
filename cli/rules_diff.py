"""Rule-level differences between two risk rule-set documents (JSON), for ``walletctl risk rules``. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Top-level settings compared as a whole; rules are compared one by one by id.
SETTINGS_KEYS = ("thresholds", "anomaly_model", "lists")


@dataclass(frozen=True, slots=True)
class Change:
    """``what`` is a rule id or a setting name; ``change`` is added, removed or changed."""

    what: str
    change: str
    before: str
    after: str


def _compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _rules_by_id(document: Any) -> dict[str, Any]:
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list):
        return {}
    return {str(rule.get("id")): rule for rule in rules if isinstance(rule, dict)}


def diff_documents(active: Any, draft: Any) -> list[Change]:
    changes: list[Change] = []
    for key in SETTINGS_KEYS:
        before = active.get(key) if isinstance(active, dict) else None
        after = draft.get(key) if isinstance(draft, dict) else None
        if before != after:
            changes.append(Change(key, "changed", _compact(before), _compact(after)))
    old_rules = _rules_by_id(active)
    new_rules = _rules_by_id(draft)
    for rule_id in sorted(old_rules.keys() | new_rules.keys()):
        before = old_rules.get(rule_id)
        after = new_rules.get(rule_id)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        changes.append(Change(f"rule {rule_id}", change, _compact(before), _compact(after)))
    return changes
