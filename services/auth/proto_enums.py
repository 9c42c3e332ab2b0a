"""Domain names ⇄ contract enum values (roles, principal kinds, statuses), used by the wire layer and by the event
payloads the use cases publish."""

from __future__ import annotations

from services.auth.domain import Status
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_identity_pb2 as identity

_ROLE_PREFIX = "ROLE_"
_KINDS = {
    PRINCIPAL_KIND_MEMBER: identity.PRINCIPAL_KIND_MEMBER,
    PRINCIPAL_KIND_CUSTOMER: identity.PRINCIPAL_KIND_CUSTOMER,
    PRINCIPAL_KIND_SERVICE: identity.PRINCIPAL_KIND_SERVICE_ACCOUNT,
}
_STATUSES = {
    Status.INVITED: identity.PRINCIPAL_STATUS_INVITED,
    Status.ACTIVE: identity.PRINCIPAL_STATUS_ACTIVE,
    Status.DISABLED: identity.PRINCIPAL_STATUS_DISABLED,
}


def role_to_proto(role: str) -> identity.Role.ValueType:
    return identity.Role.Value(_ROLE_PREFIX + role.upper())


def role_from_proto(value: int) -> str:
    """``ROLE_RISK_ANALYST`` → ``risk_analyst``; unknown or unspecified → ``""`` (validation names it)."""
    if value == identity.ROLE_UNSPECIFIED or value not in identity.Role.values():
        return ""
    return identity.Role.Name(value)[len(_ROLE_PREFIX) :].lower()  # type: ignore[arg-type]


def kind_to_proto(kind: str) -> identity.PrincipalKind.ValueType:
    return _KINDS[kind]


def status_to_proto(status: Status) -> identity.PrincipalStatus.ValueType:
    return _STATUSES[status]


def status_from_proto(value: int) -> Status | None:
    for status, proto in _STATUSES.items():
        if proto == value:
            return status
    return None
