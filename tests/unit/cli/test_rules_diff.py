"""Rule-by-rule differences shown by ``walletctl risk rules publish|dry-run``."""

from __future__ import annotations

from typing import Any

from cli.rules_diff import Change, diff_documents


def document(*rules: dict[str, Any], deny: int = 90) -> dict[str, Any]:
    return {"thresholds": {"challenge": 30, "review": 60, "deny": deny}, "rules": list(rules)}


def test_identical_documents_have_no_changes() -> None:
    rule = {"id": "a", "weight": 10}
    assert diff_documents(document(rule), document(dict(rule))) == []


def test_added_removed_changed_rules_and_settings() -> None:
    active = document({"id": "a", "weight": 10}, {"id": "b", "weight": 5})
    draft = document({"id": "a", "weight": 20}, {"id": "c", "weight": 1}, deny=95)
    changes = diff_documents(active, draft)
    assert [(change.what, change.change) for change in changes] == [
        ("thresholds", "changed"),
        ("rule a", "changed"),
        ("rule b", "removed"),
        ("rule c", "added"),
    ]
    assert changes[1] == Change("rule a", "changed", '{"id":"a","weight":10}', '{"id":"a","weight":20}')
    assert changes[2].after == ""


def test_an_empty_active_document_makes_every_rule_added() -> None:
    changes = diff_documents({}, document({"id": "a"}))
    assert ("rule a", "added") in [(change.what, change.change) for change in changes]
    assert not any(change.what == "rule a" and change.before for change in changes)
