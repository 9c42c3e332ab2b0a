"""Contract checks over the generated descriptors: every wallet RPC declares a policy, every public RPC has an HTTP
route, and every error reason the code can raise is in the ErrorReason enum."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

import services
import wallet
from services.kit.errors import WalletError
from services.kit.policy import PLATFORM_ONLY_PERMISSIONS, ROLE_PERMISSIONS, policy_for, role_grants
from wallet.common.v1 import errors_pb2

ERROR_REASON_PREFIX = "ERROR_REASON_"


def _import_all(package: object) -> None:
    path = getattr(package, "__path__", None)
    assert path is not None
    for module in pkgutil.walk_packages(path, prefix=f"{package.__name__}."):  # type: ignore[attr-defined]
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)


def _wallet_services() -> list[ServiceDescriptor]:
    _import_all(wallet)
    found: dict[str, ServiceDescriptor] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("wallet.") and name.endswith("_pb2"):
            descriptor = getattr(module, "DESCRIPTOR", None)
            for service in getattr(descriptor, "services_by_name", {}).values():
                found[service.full_name] = service
    return sorted(found.values(), key=lambda s: s.full_name)


def _methods() -> Iterator[MethodDescriptor]:
    for service in _wallet_services():
        yield from service.methods


def test_the_four_services_are_declared() -> None:
    names = {service.full_name for service in _wallet_services()}
    assert {
        "wallet.auth.v1.AuthService",
        "wallet.ledger.v1.LedgerService",
        "wallet.contacts.v1.ContactsService",
        "wallet.risk.v1.RiskService",
    } <= names


@pytest.mark.parametrize("method", list(_methods()), ids=lambda m: m.full_name)
def test_every_method_declares_a_policy(method: MethodDescriptor) -> None:
    policy = policy_for(f"/{method.containing_service.full_name}/{method.name}")
    assert policy is not None, "missing option (wallet.common.v1.policy)"
    if policy.anonymous:
        assert policy.permission == "", "anonymous methods carry no permission"
        assert not policy.step_up
    else:
        parts = policy.permission.split(".")
        assert len(parts) == 3, f"permission must be <service>.<resource>.<verb>: {policy.permission!r}"
        assert all(part.isidentifier() for part in parts)


@pytest.mark.parametrize("method", list(_methods()), ids=lambda m: m.full_name)
def test_public_methods_have_an_http_route(method: MethodDescriptor) -> None:
    policy = policy_for(f"/{method.containing_service.full_name}/{method.name}")
    assert policy is not None
    if policy.public:
        assert method.GetOptions().HasExtension(annotations_pb2.http), "public method without google.api.http"


def _subclasses(cls: type[WalletError]) -> Iterator[type[WalletError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_reason_is_in_the_enum() -> None:
    _import_all(services)
    declared = {name.removeprefix(ERROR_REASON_PREFIX) for name in errors_pb2.ErrorReason.DESCRIPTOR.values_by_name}
    reasons = {cls.reason for cls in _subclasses(WalletError)} | {WalletError.reason}
    unknown = {r for r in reasons if r not in declared}
    assert not unknown, f"reasons missing from errors.proto: {sorted(unknown)}"


def _declared_permissions() -> set[str]:
    permissions = set()
    for method in _methods():
        policy = policy_for(f"/{method.containing_service.full_name}/{method.name}")
        if policy is not None and not policy.anonymous:
            permissions.add(policy.permission)
    return permissions


def test_every_declared_permission_is_reachable() -> None:
    """A permission no role grants and no platform account holds would make its RPC uncallable."""
    declared = _declared_permissions()
    unreachable = {
        p
        for p in declared
        if p not in PLATFORM_ONLY_PERMISSIONS and not any(role_grants(r, p) for r in ROLE_PERMISSIONS)
    }
    assert not unreachable


def test_role_patterns_and_platform_permissions_name_real_permissions() -> None:
    """Catches typos: every pattern matches at least one declared permission."""
    declared = _declared_permissions()
    assert declared >= PLATFORM_ONLY_PERMISSIONS
    for role, patterns in ROLE_PERMISSIONS.items():
        for pattern in patterns:
            parts = pattern.split(".")
            assert any(
                all(p in ("*", q) for p, q in zip(parts, permission.split("."), strict=True))
                for permission in declared
            ), f"{role}: {pattern} matches no declared permission"
