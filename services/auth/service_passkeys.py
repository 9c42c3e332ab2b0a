"""Use cases of WebAuthn passkeys: the registration ceremony, passwordless sign-in, step-up with a passkey, listing
and deleting. Ceremonies are single use and short-lived; every failed verification is audited and answers one
``DEVICE_SIGNATURE_INVALID`` (never a token)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from services.auth import audit, domain, limits, passkeys
from services.auth.core import AccessToken, AuthCore, IssuedTokens, caller
from services.auth.domain import Principal, Status
from services.auth.domain_passkeys import (
    CEREMONY_AUTHENTICATION,
    CEREMONY_REGISTRATION,
    PASSKEY_AMR,
    Passkey,
    PasskeyCeremony,
    PasskeyInvalid,
    ceremony_error,
)
from services.auth.domain_records import Source
from services.auth.service import AuthTransaction
from services.auth.service_login import is_new_device, record_sign_in
from services.kit.errors import FailedPrecondition, FieldViolation, StepUpRequired
from services.kit.ids import parse_uuid, uuid7
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events


@dataclass(frozen=True, slots=True)
class CeremonyStart:
    ceremony_id: str
    options_json: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class PasskeyPage:
    passkeys: list[Passkey]
    next_page_token: str


def _new_ceremony(core: AuthCore, kind: str, organization_id: str, principal_id: str | None) -> PasskeyCeremony:
    now_s = core.clock()
    return PasskeyCeremony(
        ceremony_id=str(uuid7(int(now_s * 1000))),
        kind=kind,
        organization_id=organization_id,
        principal_id=principal_id,
        challenge=secrets.token_bytes(limits.PASSKEY_CHALLENGE_BYTES),
        expires_at=now_s + limits.PASSKEY_CEREMONY_TTL_S,
        used_at=None,
    )


# --- registration -----------------------------------------------------------------------------------------------


async def begin_registration(core: AuthCore) -> CeremonyStart:
    me = caller()
    if me.kind == PRINCIPAL_KIND_SERVICE:
        raise FailedPrecondition("service accounts have no passkeys")
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(me.organization_id, me.subject)
        if principal is None or principal.status != Status.ACTIVE:
            raise domain.PrincipalDisabled()
        existing = await tx.list_passkeys(me.subject, None, limits.PASSKEYS_PER_PRINCIPAL_MAX + 1)
        devices = await tx.count_active_devices(me.subject)
        # Like a device: once there is a second factor, adding one needs a session that proved MFA.
        proved_mfa = me.acr == domain.ACR_MFA and me.bound_method is None
        if (principal.totp_enrolled or devices > 0 or existing) and not proved_mfa:
            raise StepUpRequired("registering a passkey needs a session that proved a second factor")
        if len(existing) >= limits.PASSKEYS_PER_PRINCIPAL_MAX:
            raise FailedPrecondition(f"at most {limits.PASSKEYS_PER_PRINCIPAL_MAX} passkeys; delete one first")
        ceremony = _new_ceremony(core, CEREMONY_REGISTRATION, me.organization_id, me.subject)
        await tx.insert_ceremony(ceremony, sweep_before_s=core.clock() - limits.EXPIRED_CHALLENGE_KEEP_S)
    options = passkeys.registration_options(
        core.settings,
        challenge=ceremony.challenge,
        user_id=uuid.UUID(me.subject).bytes,
        user_name=principal.email or me.subject,
        user_display_name=principal.display_name or principal.email or me.subject,
        existing_credential_ids=[passkey.credential_id for passkey in existing],
    )
    return CeremonyStart(ceremony.ceremony_id, options, ceremony.expires_at)


async def finish_registration(
    core: AuthCore, *, ceremony_id: str, credential_json: str, display_name: str, source: Source
) -> Passkey:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(ceremony_id, "passkey_registration_id", violations)
    if credential_json == "":
        violations.append(FieldViolation("credential_json", "is required"))
    if len(display_name) > limits.DISPLAY_NAME_LENGTH_MAX:
        violations.append(FieldViolation("display_name", f"at most {limits.DISPLAY_NAME_LENGTH_MAX} characters"))
    domain.raise_if(violations)
    passkeys.credential_id_of(credential_json, "credential_json")
    now_s = core.clock()
    async with core.store.transaction() as tx:
        ceremony = await tx.use_ceremony(ceremony_id, now_s)
    ours = ceremony is not None and ceremony.principal_id == me.subject
    if ceremony is None or not ours or not ceremony.usable(CEREMONY_REGISTRATION, now_s):
        await _audit_failure(core, me.organization_id, me.subject, source, "passkey_registration")
        raise PasskeyInvalid()
    try:
        credential = passkeys.verify_registration(
            core.settings, credential_json=credential_json, challenge=ceremony.challenge
        )
    except passkeys.CeremonyFailed as failed:
        await _audit_failure(core, me.organization_id, me.subject, source, "passkey_registration", failed.reason)
        raise ceremony_error(failed.reason) from None
    passkey = Passkey(
        passkey_id=str(uuid7(int(now_s * 1000))),
        organization_id=me.organization_id,
        principal_id=me.subject,
        credential_id=credential.credential_id,
        public_key=credential.public_key,
        sign_count=credential.sign_count,
        aaguid=credential.aaguid,
        backup_eligible=credential.backup_eligible,
        backed_up=credential.backed_up,
        display_name=display_name.strip() or "passkey",
        created_at=now_s,
        last_used_at=None,
    )
    async with core.store.transaction() as tx:
        if not await tx.insert_passkey(passkey):
            raise FailedPrecondition("this credential is already registered")
        changed = events.MfaChanged(principal_id=me.subject, change=events.MFA_CHANGE_PASSKEY_REGISTERED)
        await audit.record(
            tx, changed, organization_id=me.organization_id, principal_id=me.subject, now_s=now_s, source=source
        )
        stored = await tx.get_passkey(me.subject, passkey.passkey_id)
    assert stored is not None
    return stored


# --- authentication ---------------------------------------------------------------------------------------------


async def begin_authentication(core: AuthCore, *, organization_slug: str, login_name: str) -> CeremonyStart:
    """Anonymous. The challenge is the same whether the login exists or not (no allowCredentials)."""
    if organization_slug == "":
        domain.raise_if([FieldViolation("organization_slug", "is required")])
    async with core.store.transaction() as tx:
        organization = await tx.get_organization_by_slug(organization_slug)
        if organization is None:
            raise domain.not_found("organization")
        principal = None
        if login_name != "":
            principal = await tx.find_login(organization.organization_id, domain.normalize_email(login_name))
        principal_id = principal.principal_id if principal is not None else None
        ceremony = _new_ceremony(core, CEREMONY_AUTHENTICATION, organization.organization_id, principal_id)
        await tx.insert_ceremony(ceremony, sweep_before_s=core.clock() - limits.EXPIRED_CHALLENGE_KEEP_S)
    options = passkeys.authentication_options(core.settings, challenge=ceremony.challenge)
    return CeremonyStart(ceremony.ceremony_id, options, ceremony.expires_at)


async def _verified_passkey(
    core: AuthCore, ceremony_id: str, credential_json: str, source: Source
) -> tuple[Principal, Passkey]:
    """The passkey that answered the ceremony and its principal; audits and raises PasskeyInvalid otherwise.
    Checks origin, RP id, challenge, signature, user verification, the sign count and the backup state."""
    violations: list[FieldViolation] = []
    parse_uuid(ceremony_id, "passkey_challenge_id", violations)
    if credential_json == "":
        violations.append(FieldViolation("credential_json", "is required"))
    domain.raise_if(violations)
    credential_id = passkeys.credential_id_of(credential_json, "credential_json")
    now_s = core.clock()
    failure = PasskeyInvalid.reason
    async with core.store.transaction() as tx:
        ceremony = await tx.use_ceremony(ceremony_id, now_s)
        passkey = await tx.passkey_by_credential(credential_id, for_update=True)
        usable = ceremony is not None and ceremony.usable(CEREMONY_AUTHENTICATION, now_s)
        same_tenant = (
            ceremony is not None and passkey is not None and passkey.organization_id == ceremony.organization_id
        )
        principal = await _principal_of(tx, passkey) if usable and same_tenant and passkey is not None else None
        if principal is not None and passkey is not None and ceremony is not None:
            try:
                assertion = passkeys.verify_assertion(
                    core.settings,
                    credential_json=credential_json,
                    challenge=ceremony.challenge,
                    public_key=passkey.public_key,
                    sign_count=passkey.sign_count,
                    backup_eligible=passkey.backup_eligible,
                )
            except passkeys.CeremonyFailed as failed:
                principal, failure = None, failed.reason
            else:
                await tx.record_passkey_use(passkey.passkey_id, assertion.new_sign_count, assertion.backed_up, now_s)
    if principal is None or passkey is None:
        organization_id = ceremony.organization_id if ceremony is not None else None
        principal_id = passkey.principal_id if passkey is not None else ""
        if organization_id is not None:
            await _audit_failure(core, organization_id, principal_id, source, "passkey_authentication", failure)
        raise ceremony_error(failure)
    return principal, passkey


async def _principal_of(tx: AuthTransaction, passkey: Passkey) -> Principal | None:
    principal = await tx.get_principal(passkey.organization_id, passkey.principal_id)
    return principal if principal is not None and principal.status == Status.ACTIVE else None


async def finish_authentication(
    core: AuthCore, *, ceremony_id: str, credential_json: str, source: Source
) -> IssuedTokens:
    """Passwordless sign-in: a user-verified passkey is two factors (``amr`` hwk + user, ``acr=mfa``)."""
    principal, _ = await _verified_passkey(core, ceremony_id, credential_json, source)
    async with core.store.transaction() as tx:
        organization = await tx.get_organization(principal.organization_id)
        assert organization is not None
        new_device = await is_new_device(tx, principal, source)
        tokens = await core.open_session(
            tx,
            principal,
            amr=PASSKEY_AMR,
            source=source,
            session_lifetime_s=organization.policy.session_max_lifetime_s,
            enrolment_only=False,
        )
        await record_sign_in(core, tx, principal, tokens, PASSKEY_AMR, source, new_device=new_device)
    return tokens


async def step_up_with_passkey(
    core: AuthCore, *, ceremony_id: str, credential_json: str, source: Source
) -> AccessToken:
    """``StepUp`` with a passkey factor: the passkey must be the caller's own."""
    me = caller()
    principal, _ = await _verified_passkey(core, ceremony_id, credential_json, source)
    if principal.principal_id != me.subject:
        await _audit_failure(core, me.organization_id, me.subject, source, "passkey_step_up")
        raise PasskeyInvalid()
    async with core.store.transaction() as tx:
        session = await tx.get_session(me.session_id) if me.session_id else None
        if me.session_id is not None and (session is None or session.revoked_at is not None):
            raise PasskeyInvalid()
        succeeded = events.StepUpSucceeded(
            principal_id=me.subject, method=events.STEP_UP_METHOD_PASSKEY, source=audit.event_source(source)
        )
        await audit.record(
            tx,
            succeeded,
            organization_id=me.organization_id,
            principal_id=me.subject,
            now_s=core.clock(),
            source=source,
        )
    session_amr = session.amr if session is not None else (domain.AMR_PASSWORD,)
    subject = domain.TokenSubject(
        principal_id=principal.principal_id,
        organization_id=principal.organization_id,
        kind=principal.kind,
        roles=domain.token_roles(principal),
        scopes=(),
        amr=tuple(dict.fromkeys((*session_amr, *PASSKEY_AMR))),
        auth_time_s=int(core.clock()),
        session_id=me.session_id,
        device_id=me.device_id,
    )
    return await core.mint(subject, ttl_s=limits.STEP_UP_TOKEN_TTL_S, acr=domain.ACR_MFA)


async def _audit_failure(
    core: AuthCore,
    organization_id: str,
    principal_id: str,
    source: Source,
    step: str,
    reason: str = PasskeyInvalid.reason,
) -> None:
    failed = events.StepUpFailed(
        principal_id=principal_id,
        method=events.STEP_UP_METHOD_PASSKEY,
        source=audit.event_source(source),
        reason=f"{reason}:{step}",
    )
    async with core.store.transaction() as tx:
        await audit.record(
            tx, failed, organization_id=organization_id, principal_id=principal_id, now_s=core.clock(), source=source
        )


# --- listing and deleting ---------------------------------------------------------------------------------------


async def list_passkeys(core: AuthCore, *, page_size_requested: int, page_token: str) -> PasskeyPage:
    me = caller()
    size = page_size(page_size_requested)
    filters = {"principal": me.subject}
    cursor = decode_page_token(page_token, filters)
    after = (float(cursor["t"]), str(cursor["id"])) if cursor is not None else None
    async with core.store.transaction() as tx:
        rows = await tx.list_passkeys(me.subject, after, size + 1)
    page, next_token = next_page(rows, size, lambda last: {"t": last.created_at, "id": last.passkey_id}, filters)
    return PasskeyPage(page, next_token)


async def delete_passkey(core: AuthCore, *, passkey_id: str, request_id: str, source: Source) -> Passkey:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(passkey_id, "passkey_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        passkey = await tx.get_passkey(me.subject, passkey_id, for_update=True)
        if passkey is None:
            raise domain.not_found("passkey")
        if await core.claim_request(tx, me.organization_id, request_id, "delete_passkey", passkey_id):
            return passkey
        await tx.delete_passkey(passkey_id, core.clock())
        removed = events.MfaChanged(principal_id=me.subject, change=events.MFA_CHANGE_PASSKEY_REMOVED)
        await audit.record(
            tx,
            removed,
            organization_id=me.organization_id,
            principal_id=me.subject,
            now_s=core.clock(),
            source=source,
        )
    return passkey
