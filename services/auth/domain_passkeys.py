"""Records and rules of WebAuthn passkeys: the stored credential, the single-use ceremony, and what a passkey
proves (``amr`` ``hwk`` + ``user``: a user-verified passkey is two factors, so ``acr=mfa``). No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.errors import FieldViolation, InvalidArgument, Unauthenticated, WalletError

CEREMONY_REGISTRATION = "registration"
CEREMONY_AUTHENTICATION = "authentication"
# RFC 8176: proof of possession of a hardware-secured key, and a user-verification test.
PASSKEY_AMR = ("hwk", "user")


class PasskeyInvalid(Unauthenticated):
    # The contract's one reason for device and passkey signatures that do not verify.
    reason = "DEVICE_SIGNATURE_INVALID"

    def __init__(self) -> None:
        super().__init__("the passkey ceremony is unknown, used or expired, or the credential does not verify")


class PasskeyOriginInvalid(Unauthenticated):
    reason = "PASSKEY_ORIGIN_INVALID"

    def __init__(self) -> None:
        super().__init__("the passkey answered for another origin or relying-party id")


class PasskeyCounterInvalid(Unauthenticated):
    reason = "PASSKEY_COUNTER_INVALID"

    def __init__(self) -> None:
        super().__init__("the passkey's signature counter did not go up; the authenticator may have been cloned")


class PasskeyAttestationInvalid(InvalidArgument):
    reason = "DEVICE_ATTESTATION_INVALID"

    def __init__(self) -> None:
        problem = "the attestation is malformed or its statement does not verify"
        super().__init__(problem, field_violations=[FieldViolation("credential_json", problem)])


_CEREMONY_ERRORS: dict[str, type[WalletError]] = {
    PasskeyInvalid.reason: PasskeyInvalid,
    PasskeyOriginInvalid.reason: PasskeyOriginInvalid,
    PasskeyCounterInvalid.reason: PasskeyCounterInvalid,
    PasskeyAttestationInvalid.reason: PasskeyAttestationInvalid,
}


def ceremony_error(reason: str) -> WalletError:
    """The error a failed ceremony answers, by the reason its verification gave (``passkeys.FAILURE_*``)."""
    return _CEREMONY_ERRORS[reason]()  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class Passkey:
    passkey_id: str
    organization_id: str
    principal_id: str
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    display_name: str
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class PasskeyCeremony:
    ceremony_id: str
    kind: str
    organization_id: str
    principal_id: str | None
    challenge: bytes
    expires_at: float
    used_at: float | None

    def usable(self, kind: str, now_s: float) -> bool:
        return self.kind == kind and self.used_at is None and self.expires_at > now_s
