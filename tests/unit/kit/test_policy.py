import pytest

from services.kit.policy import ROLE_PERMISSIONS, grants, role_grants


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("owner", "ledger.transfers.write", True),
        ("finance", "ledger.transfers.write", True),
        ("finance", "auth.members.admin", False),
        ("auditor", "ledger.accounts.read", True),
        ("auditor", "ledger.transfers.write", False),
        ("auditor", "contacts.contacts.reveal", False),
        ("auditor", "contacts.subjects.export", False),
        ("auditor", "ledger.compliance.export", True),
        ("owner", "ledger.compliance.export", True),
        ("finance", "ledger.compliance.export", False),
        ("admin", "ledger.compliance.export", False),
        ("support", "ledger.compliance.export", False),
        ("owner", "contacts.keys.admin", False),
        ("owner", "risk.assessments.assess", False),
        ("auditor", "contacts.directory.read", False),
        ("finance", "auth.sessions.write", True),
        ("support", "contacts.contacts.reveal", True),
        ("support", "ledger.transfers.write", False),
        ("approver", "ledger.approvals.approve", True),
        ("risk_analyst", "risk.rules.write", True),
        ("risk_analyst", "ledger.transfers.write", False),
        ("customer", "ledger.transfers.write", True),
        ("customer", "risk.rules.write", False),
        ("nobody", "ledger.accounts.read", False),
    ],
)
def test_role_table(role: str, permission: str, allowed: bool) -> None:
    assert role_grants(role, permission) is allowed


def test_platform_permissions_come_only_from_scopes() -> None:
    assert grants(frozenset(), frozenset({"risk.assessments.assess"}), "risk.assessments.assess")
    assert not grants(frozenset(ROLE_PERMISSIONS), frozenset(), "risk.assessments.assess")


def test_scopes_grant_exact_permissions_only() -> None:
    scopes = frozenset({"ledger.transfers.write"})
    assert grants(frozenset(), scopes, "ledger.transfers.write")
    assert not grants(frozenset(), scopes, "ledger.transfers.read")


def test_every_role_of_the_design_is_defined() -> None:
    design_roles = {"owner", "admin", "finance", "approver", "risk_analyst", "auditor", "support", "customer"}
    assert set(ROLE_PERMISSIONS) == design_roles
