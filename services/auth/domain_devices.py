"""Pure rules of trusted devices: what a registration must hold, the exact bytes a device signs for a step-up
(bound to the device and to one operation), checking that signature, and the ``amr`` a device step-up proves.
No I/O; the clock and the nonce are passed in."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.auth import limits
from services.kit.errors import FieldViolation, Unauthenticated

PLATFORMS = frozenset({"ios", "android", "web", "other"})
KEY_ALGORITHM_ECDSA_P256 = "ecdsa_p256_sha256"
KEY_ALGORITHM_ED25519 = "ed25519"
KEY_ALGORITHMS = frozenset({KEY_ALGORITHM_ECDSA_P256, KEY_ALGORITHM_ED25519})
STATUS_ACTIVE = "active"
STATUS_REVOKED = "revoked"
USER_VERIFICATION_BIOMETRIC = "biometric"
USER_VERIFICATION_PASSCODE = "device_passcode"
# RFC 8176 method values: a hardware-held key, unlocked by a biometric or by the device passcode.
AMR_HARDWARE_KEY = "hwk"
AMR_BIOMETRIC = "bio"
AMR_PIN = "pin"
_USER_VERIFICATION_AMR = {USER_VERIFICATION_BIOMETRIC: AMR_BIOMETRIC, USER_VERIFICATION_PASSCODE: AMR_PIN}
SIGNING_PAYLOAD_TYPE = "wallet.auth.v1.device-challenge"
SIGNING_PAYLOAD_VERSION = 1
_CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{2,11}$")

DevicePublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


class DeviceInvalid(Unauthenticated):
    reason = "DEVICE_INVALID"

    def __init__(self) -> None:
        super().__init__("the device is unknown or revoked")


class DeviceSignatureInvalid(Unauthenticated):
    reason = "DEVICE_SIGNATURE_INVALID"

    def __init__(self) -> None:
        # One message whatever was wrong (unknown, used, expired, foreign challenge or a bad signature).
        super().__init__("the device challenge is unknown, used or expired, or its signature does not verify")


@dataclass(frozen=True, slots=True)
class Device:
    principal_id: str
    organization_id: str
    device_id: str
    display_name: str
    platform: str
    model: str
    app_version: str
    key_algorithm: str
    public_key: bytes
    status: str
    created_at: float
    last_used_at: float
    revoked_at: float | None

    @property
    def is_active(self) -> bool:
        return self.status == STATUS_ACTIVE

    def same_registration(self, other: Device) -> bool:
        """Whether a repeated RegisterDevice carries the same content (idempotent replay)."""
        return (self.platform, self.key_algorithm, self.public_key, self.display_name, self.model) == (
            other.platform,
            other.key_algorithm,
            other.public_key,
            other.display_name,
            other.model,
        )


@dataclass(frozen=True, slots=True)
class DeviceOperation:
    """What a step-up approves: a method, the resource acted on, and the amount shown to the user, if any."""

    method: str
    resource_id: str
    amount_currency: str = ""
    amount_minor: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceChallenge:
    device_challenge_id: str
    organization_id: str
    principal_id: str
    device_id: str
    session_id: str | None
    operation: DeviceOperation
    signing_payload: bytes
    expires_at: float
    used_at: float | None

    def usable(self, now_s: float) -> bool:
        return self.used_at is None and self.expires_at > now_s


# --- registration ----------------------------------------------------------------------------------------------


def load_public_key(key_algorithm: str, public_key_der: bytes) -> DevicePublicKey | None:
    """The key when ``public_key_der`` is a DER SubjectPublicKeyInfo of the declared algorithm; None otherwise."""
    if len(public_key_der) == 0 or len(public_key_der) > limits.DEVICE_PUBLIC_KEY_BYTES_MAX:
        return None
    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, UnsupportedAlgorithm):
        return None
    if key_algorithm == KEY_ALGORITHM_ED25519 and isinstance(key, Ed25519PublicKey):
        return key
    if (
        key_algorithm == KEY_ALGORITHM_ECDSA_P256
        and isinstance(key, ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    return None


def registration_violations(device: Device) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if len(device.display_name) > limits.DISPLAY_NAME_LENGTH_MAX:
        violations.append(
            FieldViolation("display_name", f"must be at most {limits.DISPLAY_NAME_LENGTH_MAX} characters")
        )
    if device.platform not in PLATFORMS:
        violations.append(FieldViolation("platform", "is required"))
    for field, value in (("model", device.model), ("app_version", device.app_version)):
        if len(value) > limits.DEVICE_TEXT_LENGTH_MAX:
            violations.append(FieldViolation(field, f"must be at most {limits.DEVICE_TEXT_LENGTH_MAX} characters"))
    if device.key_algorithm not in KEY_ALGORITHMS:
        violations.append(FieldViolation("key_algorithm", "is required"))
    elif load_public_key(device.key_algorithm, device.public_key) is None:
        violations.append(
            FieldViolation("public_key", "must be a DER SubjectPublicKeyInfo of the key_algorithm's key type")
        )
    return violations


# --- challenges ------------------------------------------------------------------------------------------------


def operation_violations(operation: DeviceOperation, method_can_be_approved: bool) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if operation.method == "":
        violations.append(FieldViolation("operation.method", "is required"))
    elif not method_can_be_approved:
        violations.append(FieldViolation("operation.method", "must be a declared, authenticated wallet method"))
    if operation.resource_id.strip() == "":
        violations.append(FieldViolation("operation.resource_id", "is required"))
    elif len(operation.resource_id) > limits.DEVICE_RESOURCE_ID_LENGTH_MAX:
        violations.append(
            FieldViolation(
                "operation.resource_id", f"must be at most {limits.DEVICE_RESOURCE_ID_LENGTH_MAX} characters"
            )
        )
    if operation.amount_minor is not None:
        if not _CURRENCY.match(operation.amount_currency):
            violations.append(FieldViolation("operation.amount.currency", "must be an ISO 4217 or asset code"))
        if operation.amount_minor <= 0:
            violations.append(FieldViolation("operation.amount.amount_minor", "must be positive"))
    return violations


def signing_payload(
    *,
    device_challenge_id: str,
    nonce: bytes,
    organization_id: str,
    principal_id: str,
    device_id: str,
    operation: DeviceOperation,
    expires_at_s: int,
) -> bytes:
    """Canonical JSON (sorted keys, no spaces, ASCII): the app may show it, the server stores and verifies it.

    Everything a signature must not be replayable across is inside: the challenge id and a fresh nonce (single
    use), the principal and device, and the operation (method, resource, amount) — a signature over transfer A's
    payload never verifies over transfer B's.
    """
    assert len(nonce) == limits.DEVICE_CHALLENGE_NONCE_BYTES
    amount = (
        {"currency": operation.amount_currency, "amount_minor": str(operation.amount_minor)}
        if operation.amount_minor is not None
        else None
    )
    body = {
        "typ": SIGNING_PAYLOAD_TYPE,
        "v": SIGNING_PAYLOAD_VERSION,
        "challenge_id": device_challenge_id,
        "nonce": base64.urlsafe_b64encode(nonce).decode().rstrip("="),
        "organization_id": organization_id,
        "principal_id": principal_id,
        "device_id": device_id,
        "operation": {"method": operation.method, "resource_id": operation.resource_id, "amount": amount},
        "expires_at": expires_at_s,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signature_valid(device: Device, signature: bytes, payload: bytes) -> bool:
    """Ed25519 over the payload, or ECDSA P-256 with SHA-256 (DER signature, as iOS and Android produce)."""
    key = load_public_key(device.key_algorithm, device.public_key)
    assert key is not None, "a stored device key was validated at registration"
    if len(signature) == 0 or len(signature) > limits.DEVICE_SIGNATURE_BYTES_MAX:
        return False
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def step_up_amr(session_amr: tuple[str, ...], user_verification: str) -> tuple[str, ...]:
    """The session's methods plus the hardware key and how it was unlocked (``bio`` or ``pin``)."""
    return tuple(dict.fromkeys((*session_amr, AMR_HARDWARE_KEY, _USER_VERIFICATION_AMR[user_verification])))
