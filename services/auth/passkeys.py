"""WebAuthn ceremonies through py_webauthn (Duo Labs' `webauthn` package): the options a browser or platform
authenticator is handed, and the verification of what it answers. User verification is always required; attestation
is not asked for (`none`: passkeys from synced providers carry none, and we trust the ceremony, not the model).

Everything here is pure (no I/O): the use cases in ``service_passkeys.py`` store and load the results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services.auth import limits
from services.auth.config import AuthSettings
from services.kit.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True, slots=True)
class RegisteredCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True, slots=True)
class Assertion:
    new_sign_count: int
    backed_up: bool


class CeremonyFailed(Exception):
    """The authenticator's answer did not verify (wrong origin, RP id, challenge, signature, counter, no UV)."""


def registration_options(
    settings: AuthSettings,
    *,
    challenge: bytes,
    user_id: bytes,
    user_name: str,
    user_display_name: str,
    existing_credential_ids: list[bytes],
) -> str:
    options = generate_registration_options(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        user_id=user_id,
        user_name=user_name,
        user_display_name=user_display_name,
        challenge=challenge,
        timeout=limits.PASSKEY_CEREMONY_TTL_S * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=value) for value in existing_credential_ids],
    )
    return str(options_to_json(options))


def authentication_options(settings: AuthSettings, *, challenge: bytes) -> str:
    """No allowCredentials: passkeys are discoverable, and a challenge for an unknown login looks the same."""
    options = generate_authentication_options(
        rp_id=settings.webauthn_rp_id,
        challenge=challenge,
        timeout=limits.PASSKEY_CEREMONY_TTL_S * 1000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return str(options_to_json(options))


def credential_id_of(credential_json: str, field: str) -> bytes:
    """The raw credential id an authenticator's JSON names (to find the stored passkey before verifying)."""
    violation = FieldViolation(field, "must be a WebAuthn RegistrationResponseJSON or AuthenticationResponseJSON")
    if len(credential_json) > limits.PASSKEY_CREDENTIAL_JSON_LENGTH_MAX:
        raise InvalidArgument("the credential is too large", field_violations=[violation])
    try:
        raw_id = json.loads(credential_json)["rawId"]
        if not isinstance(raw_id, str) or not 0 < len(raw_id) <= limits.PASSKEY_CREDENTIAL_ID_LENGTH_MAX:
            raise ValueError("rawId")
        return bytes(base64url_to_bytes(raw_id))
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("the credential is not WebAuthn JSON", field_violations=[violation]) from None


def verify_registration(settings: AuthSettings, *, credential_json: str, challenge: bytes) -> RegisteredCredential:
    try:
        verified = verify_registration_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise CeremonyFailed(type(error).__name__) from None
    return RegisteredCredential(
        credential_id=bytes(verified.credential_id),
        public_key=bytes(verified.credential_public_key),
        sign_count=verified.sign_count,
        aaguid=str(verified.aaguid),
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=bool(verified.credential_backed_up),
    )


def verify_assertion(
    settings: AuthSettings,
    *,
    credential_json: str,
    challenge: bytes,
    public_key: bytes,
    sign_count: int,
    backup_eligible: bool,
) -> Assertion:
    """Checks origin, RP id, challenge, signature, user verification and that the sign count went up (a count
    that stays or goes back means a cloned authenticator). A credential registered as single-device that now says
    it is backed up is refused too (its backup state cannot change)."""
    try:
        verified = verify_authentication_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise CeremonyFailed(type(error).__name__) from None
    multi_device = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if multi_device != backup_eligible:
        raise CeremonyFailed("backup eligibility changed")
    return Assertion(new_sign_count=verified.new_sign_count, backed_up=bool(verified.credential_backed_up))
