"""Method policies read from the proto descriptors, and the role → permission table.

Every ``wallet.*`` RPC declares ``option (wallet.common.v1.policy)``: the permission it needs, whether the gateway
exposes it, whether it needs a fresh step-up, whether it is anonymous. The kit never keeps a hand-written route or
permission table; a wallet method without a policy is refused (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

from wallet.common.v1 import options_pb2

WALLET_PACKAGE_PREFIX = "wallet."


@dataclass(frozen=True, slots=True)
class MethodPolicy:
    full_method: str
    permission: str
    public: bool
    step_up: bool
    anonymous: bool


def split_full_method(full_method: str) -> tuple[str, str]:
    """``/wallet.ledger.v1.LedgerService/CreateTransfer`` → (``wallet.ledger.v1.LedgerService``, ``CreateTransfer``)."""
    _, service, method = full_method.split("/", 2)
    return service, method


def is_wallet_method(full_method: str) -> bool:
    return full_method.startswith("/" + WALLET_PACKAGE_PREFIX)


def method_descriptor(full_method: str) -> MethodDescriptor | None:
    service, method = split_full_method(full_method)
    try:
        service_descriptor = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return None
    return service_descriptor.methods_by_name.get(method)


@cache
def policy_for(full_method: str) -> MethodPolicy | None:
    """The declared policy, or None when the method has none (the caller must then refuse it)."""
    descriptor = method_descriptor(full_method)
    if descriptor is None:
        return None
    options = descriptor.GetOptions()
    if not options.HasExtension(options_pb2.policy):
        return None
    declared = options.Extensions[options_pb2.policy]
    return MethodPolicy(
        full_method=full_method,
        permission=declared.permission,
        public=declared.public,
        step_up=declared.step_up,
        anonymous=declared.anonymous,
    )


# Permissions no tenant role ever grants: platform-wide operations (vault keys and backups, signing keys) and the
# service-to-service edges (risk assessment, directory lookups, card secrets, review resolution). Only the
# platform's own service accounts hold them, as scopes.
PLATFORM_ONLY_PERMISSIONS = frozenset(
    {
        "auth.keys.admin",
        "auth.tokens.read",
        "contacts.backups.admin",
        "contacts.card_secrets.reveal",
        "contacts.card_secrets.write",
        "contacts.directory.read",
        "contacts.keys.admin",
        "contacts.keys.read",
        "contacts.notifications.write",
        "ledger.reviews.approve",
        "risk.assessments.assess",
    }
)

# Every human manages their own sign-in: sessions, password and MFA, devices.
_SELF_SERVICE = ("auth.sessions.*", "auth.credentials.*", "auth.devices.*")

# Roles of DESIGN.md §5 as permission patterns. A pattern is `<service>.<resource>.<verb>` where `*` stands for
# exactly one segment. Customers get their own-resource permissions here; *ownership* is checked by the service.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "owner": ("*.*.*",),
    "admin": (
        *_SELF_SERVICE,
        "*.*.read",
        "auth.members.*",
        "auth.customers.*",
        "auth.service_accounts.*",
        "ledger.accounts.*",
        "ledger.cards.write",
        "ledger.assets.*",
        "contacts.contacts.write",
    ),
    "finance": (
        *_SELF_SERVICE,
        "ledger.transfers.*",
        "ledger.fx.*",
        "ledger.invoices.*",
        "ledger.reversals.write",
        "ledger.statements.read",
        "ledger.accounts.read",
        "ledger.assets.read",
        "ledger.approvals.read",
    ),
    "approver": (
        *_SELF_SERVICE,
        "ledger.approvals.*",
        "ledger.transfers.read",
        "ledger.accounts.read",
        "risk.cases.*",
        "risk.complaints.approve",
        "risk.complaints.read",
    ),
    "risk_analyst": (
        *_SELF_SERVICE,
        "risk.rules.*",
        "risk.lists.*",
        "risk.cases.read",
        "risk.assessments.read",
        "risk.aml_reports.read",
    ),
    "auditor": (*_SELF_SERVICE, "*.*.read", "ledger.compliance.export"),
    "support": (
        *_SELF_SERVICE,
        "contacts.contacts.read",
        "contacts.contacts.reveal",
        "risk.complaints.read",
        "risk.complaints.write",
        "risk.complaints.admin",
        "auth.customers.read",
        "ledger.accounts.read",
        "ledger.transfers.read",
    ),
    "customer": (
        *_SELF_SERVICE,
        "ledger.accounts.read",
        "ledger.accounts.write",
        "ledger.transfers.read",
        "ledger.transfers.write",
        "ledger.statements.read",
        "ledger.invoices.*",
        "ledger.cards.read",
        "ledger.cards.write",
        "ledger.cards.reveal",
        "ledger.fx.read",
        "ledger.assets.read",
        "contacts.contacts.read",
        "contacts.contacts.write",
        "contacts.access_log.read",
        "contacts.subjects.erase",
        "contacts.subjects.export",
        "risk.complaints.read",
        "risk.complaints.write",
    ),
}


def _matches(pattern: str, permission: str) -> bool:
    pattern_parts = pattern.split(".")
    permission_parts = permission.split(".")
    if len(pattern_parts) != len(permission_parts):
        return False
    return all(p in ("*", q) for p, q in zip(pattern_parts, permission_parts, strict=True))


@cache
def role_grants(role: str, permission: str) -> bool:
    if permission in PLATFORM_ONLY_PERMISSIONS:
        return False
    return any(_matches(pattern, permission) for pattern in ROLE_PERMISSIONS.get(role, ()))


def grants(roles: frozenset[str], scopes: frozenset[str], permission: str) -> bool:
    """True when any role, or any scope (service accounts hold permissions directly as scopes), grants it."""
    if permission in scopes:
        return True
    return any(role_grants(role, permission) for role in roles)
