"""Domain names ⇄ contract enum values (roles, principal kinds, statuses), used by the wire layer and by the event
payloads the use cases publish."""

from __future__ import annotations

from services.auth.domain import Status
from services.auth.domain_devices import (
    KEY_ALGORITHM_ECDSA_P256,
    KEY_ALGORITHM_ED25519,
    STATUS_ACTIVE,
    STATUS_REVOKED,
    USER_VERIFICATION_BIOMETRIC,
    USER_VERIFICATION_PASSCODE,
)
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_devices_pb2 as devices
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


# --- devices ----------------------------------------------------------------------------------------------------

_PLATFORMS = {
    "ios": devices.DEVICE_PLATFORM_IOS,
    "android": devices.DEVICE_PLATFORM_ANDROID,
    "web": devices.DEVICE_PLATFORM_WEB,
    "other": devices.DEVICE_PLATFORM_OTHER,
}
_KEY_ALGORITHMS = {
    KEY_ALGORITHM_ECDSA_P256: devices.DEVICE_KEY_ALGORITHM_ECDSA_P256_SHA256,
    KEY_ALGORITHM_ED25519: devices.DEVICE_KEY_ALGORITHM_ED25519,
}
_DEVICE_STATUSES = {STATUS_ACTIVE: devices.DEVICE_STATUS_ACTIVE, STATUS_REVOKED: devices.DEVICE_STATUS_REVOKED}
_USER_VERIFICATIONS: dict[int, str] = {
    devices.USER_VERIFICATION_BIOMETRIC: USER_VERIFICATION_BIOMETRIC,
    devices.USER_VERIFICATION_DEVICE_PASSCODE: USER_VERIFICATION_PASSCODE,
}


def platform_to_proto(platform: str) -> devices.DevicePlatform.ValueType:
    return _PLATFORMS[platform]


def platform_from_proto(value: int) -> str:
    """Unknown or unspecified → ``""`` (validation names the field)."""
    return next((name for name, proto in _PLATFORMS.items() if proto == value), "")


def key_algorithm_to_proto(key_algorithm: str) -> devices.DeviceKeyAlgorithm.ValueType:
    return _KEY_ALGORITHMS[key_algorithm]


def key_algorithm_from_proto(value: int) -> str:
    return next((name for name, proto in _KEY_ALGORITHMS.items() if proto == value), "")


def device_status_to_proto(status: str) -> devices.DeviceStatus.ValueType:
    return _DEVICE_STATUSES[status]


def user_verification_from_proto(value: int) -> str:
    return _USER_VERIFICATIONS.get(value, "")
