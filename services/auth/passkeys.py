"""WebAuthn ceremonies through py_webauthn (Duo Labs' `webauthn` package): the options a browser or platform
authenticator is handed, and the verification of what it answers. User verification is always required; attestation
is not asked for (`none`: passkeys from synced providers carry none, and we trust the ceremony, not the model).

Everything here is pure (no I/O): the use cases in ``service_passkeys.py`` store and load the results.
"""

from __future__ import annotations

import hashlib
import hmac
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
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import (
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ClientDataType,
    CollectedClientData,
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


# Why a ceremony failed: the ErrorInfo reason the caller gets (errors.proto).
FAILURE_SIGNATURE = "DEVICE_SIGNATURE_INVALID"  # challenge, type, user verification, signature
FAILURE_ORIGIN = "PASSKEY_ORIGIN_INVALID"  # another origin or relying-party id
FAILURE_COUNTER = "PASSKEY_COUNTER_INVALID"  # a valid signature whose counter did not go up: a clone
FAILURE_ATTESTATION = "DEVICE_ATTESTATION_INVALID"  # malformed, or an attestation statement that does not verify


class CeremonyFailed(Exception):
    """The authenticator's answer did not verify; ``reason`` says which check refused it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


_PARSE_ERRORS = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError, IndexError)


def _origin_and_rp_id_match(settings: AuthSettings, client_data: CollectedClientData, rp_id_hash: bytes) -> bool:
    expected_rp_id_hash = hashlib.sha256(settings.webauthn_rp_id.encode()).digest()
    return client_data.origin in settings.webauthn_origins and hmac.compare_digest(rp_id_hash, expected_rp_id_hash)


def registration_failure(settings: AuthSettings, *, credential_json: str, challenge: bytes) -> str:
    """Why py_webauthn refused a registration, re-reading the answer with its own parsers. The library checks the
    client data, the RP id hash and the flags before the attestation statement, so an answer whose ceremony fields
    all hold failed in its attestation (statement signature, certificate chain, key algorithm)."""
    try:
        credential = parse_registration_credential_json(credential_json)
        client_data = parse_client_data_json(credential.response.client_data_json)
        attestation = parse_attestation_object(credential.response.attestation_object)
    except _PARSE_ERRORS:
        return FAILURE_ATTESTATION
    if not _origin_and_rp_id_match(settings, client_data, attestation.auth_data.rp_id_hash):
        return FAILURE_ORIGIN
    ceremony_holds = (
        client_data.type == ClientDataType.WEBAUTHN_CREATE
        and hmac.compare_digest(client_data.challenge, challenge)
        and attestation.auth_data.flags.up
        and attestation.auth_data.flags.uv
    )
    return FAILURE_ATTESTATION if ceremony_holds else FAILURE_SIGNATURE


def verify_registration(settings: AuthSettings, *, credential_json: str, challenge: bytes) -> RegisteredCredential:
    """Every attestation format py_webauthn supports is verified as it arrives (``none``; ``packed``, including
    self attestation; ``fido-u2f``, ``tpm``, ``apple``, ``android-key``, ``android-safetynet`` against the
    library's bundled roots). We ask for ``none``, so most passkeys send none."""
    try:
        verified = verify_registration_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        reason = registration_failure(settings, credential_json=credential_json, challenge=challenge)
        raise CeremonyFailed(reason) from None
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
        verified = _verified_assertion(settings, credential_json, challenge, public_key, sign_count)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        reason = assertion_failure(settings, credential_json, challenge, public_key)
        raise CeremonyFailed(reason) from None
    multi_device = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if multi_device != backup_eligible:
        raise CeremonyFailed(FAILURE_SIGNATURE)
    return Assertion(new_sign_count=verified.new_sign_count, backed_up=bool(verified.credential_backed_up))


def _verified_assertion(
    settings: AuthSettings, credential_json: str, challenge: bytes, public_key: bytes, sign_count: int
) -> VerifiedAuthentication:
    return verify_authentication_response(
        credential=credential_json,
        expected_challenge=challenge,
        expected_rp_id=settings.webauthn_rp_id,
        expected_origin=list(settings.webauthn_origins),
        credential_public_key=public_key,
        credential_current_sign_count=sign_count,
        require_user_verification=True,
    )


def assertion_failure(settings: AuthSettings, credential_json: str, challenge: bytes, public_key: bytes) -> str:
    """Why an assertion was refused. Another origin or RP id says so; a counter is blamed only when the assertion
    verifies in every other respect (checked by verifying it again without the stored count), so a forged answer
    with an old counter is a bad signature, not a "clone"."""
    try:
        credential = parse_authentication_credential_json(credential_json)
        client_data = parse_client_data_json(credential.response.client_data_json)
        auth_data = parse_authenticator_data(credential.response.authenticator_data)
    except _PARSE_ERRORS:
        return FAILURE_SIGNATURE
    if not _origin_and_rp_id_match(settings, client_data, auth_data.rp_id_hash):
        return FAILURE_ORIGIN
    try:
        _verified_assertion(settings, credential_json, challenge, public_key, 0)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return FAILURE_SIGNATURE
    return FAILURE_COUNTER
