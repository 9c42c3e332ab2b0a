"""The permissions the contracts declare (read from the generated descriptors), and which of them a caller may
grant to a service account it creates: only those it holds itself, never a platform-only one."""

from __future__ import annotations

from functools import cache

from services.kit.policy import PLATFORM_ONLY_PERMISSIONS, grants, policy_for
from wallet.auth.v1 import auth_service_pb2
from wallet.contacts.v1 import contacts_service_pb2
from wallet.ledger.v1 import ledger_service_pb2
from wallet.risk.v1 import risk_service_pb2

_SERVICE_FILES = (auth_service_pb2, ledger_service_pb2, contacts_service_pb2, risk_service_pb2)


@cache
def declared_permissions() -> frozenset[str]:
    permissions: set[str] = set()
    for module in _SERVICE_FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                policy = policy_for(f"/{service.full_name}/{method.name}")
                if policy is not None and policy.permission:
                    permissions.add(policy.permission)
    return frozenset(permissions)


def grantable_by(roles: frozenset[str], scopes: frozenset[str], *, platform: bool) -> frozenset[str]:
    """Tenant callers grant what they hold minus platform-only permissions; a platform bootstrap grants any."""
    declared = declared_permissions()
    if platform:
        return declared
    return frozenset(
        permission
        for permission in declared
        if permission not in PLATFORM_ONLY_PERMISSIONS and grants(roles, scopes, permission)
    )
