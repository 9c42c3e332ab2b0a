"""Use cases of trusted devices: register, list, rename, revoke (cutting off the device's sessions at once), an
admin's reset, and the biometric step-up — a single-use challenge bound to the device and one operation, signed by
the device's hardware key, exchanged for a step-up token valid for that operation only."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from services.auth import audit, domain, limits
from services.auth.core import AccessToken, AuthCore, caller
from services.auth.domain import Principal
from services.auth.domain_device_proof import (
    DeviceAttestationInvalid,
    DeviceKeyInvalid,
    DeviceKeyProofInvalid,
    check_attestation,
    check_key_proof,
)
from services.auth.domain_devices import (
    AMR_HARDWARE_KEY,
    STATUS_ACTIVE,
    USER_VERIFICATION_BIOMETRIC,
    USER_VERIFICATION_PASSCODE,
    Device,
    DeviceChallenge,
    DeviceInvalid,
    DeviceOperation,
    DeviceSignatureInvalid,
    operation_violations,
    registration_violations,
    signature_valid,
    signing_payload,
    step_up_amr,
)
from services.auth.domain_records import Session, Source
from services.auth.proto_enums import platform_to_proto
from services.auth.service import AuthTransaction
from services.kit.errors import FailedPrecondition, FieldViolation, IdempotencyKeyReused, StepUpRequired
from services.kit.ids import parse_uuid, uuid7
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.policy import policy_for
from services.kit.tokens import PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

# The services whose methods a device step-up may approve: importing their contracts registers their method
# options (the `step_up` flag) in the descriptor pool, so an operation's method is checked against them.
from wallet.contacts.v1 import contacts_service_pb2 as _contacts_contract  # noqa: F401
from wallet.ledger.v1 import ledger_service_pb2 as _ledger_contract  # noqa: F401
from wallet.risk.v1 import risk_service_pb2 as _risk_contract  # noqa: F401

REVOKE_CAUSE_DEVICE_REVOKED = "device_revoked"
REVOKE_CAUSE_PASSKEY_REMOVED = "passkey_removed"


@dataclass(frozen=True, slots=True)
class DevicePage:
    devices: list[Device]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class DeviceStepUp:
    token: AccessToken
    operation: DeviceOperation


def _human_caller() -> tuple[str, str]:
    me = caller()
    if me.kind == PRINCIPAL_KIND_SERVICE:
        raise FailedPrecondition("service accounts have no devices")
    return me.organization_id, me.subject


async def register_device(
    core: AuthCore, *, device: Device, key_proof: bytes, attestation: bytes, source: Source
) -> Device:
    """``device`` carries the request's fields; owner, status and times are set here. The caller must prove it
    holds the key (``key_proof``) and, for Android, may send the key's attestation chain; a malformed key, a proof
    or attestation that does not verify is refused with its own reason and audited (DeviceRegistrationRefused)."""
    me = caller()
    organization_id, principal_id = _human_caller()
    violations: list[FieldViolation] = []
    parse_uuid(device.device_id, "device_id", violations)
    if len(key_proof) == 0:
        violations.append(FieldViolation("key_proof", "is required: the new key's signature over the registration"))
    now_s = core.clock()
    candidate = replace(
        device,
        principal_id=principal_id,
        organization_id=organization_id,
        display_name=device.display_name.strip() or device.model or "device",
        status=STATUS_ACTIVE,
        created_at=now_s,
        last_used_at=now_s,
        revoked_at=None,
    )
    violations += registration_violations(candidate)
    try:
        _check_registration(candidate, violations, key_proof, attestation)
    except (DeviceKeyInvalid, DeviceKeyProofInvalid, DeviceAttestationInvalid) as refused:
        await _audit_registration_refused(core, candidate, refused.reason, source)
        raise
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(organization_id, principal_id, for_update=True)
        if principal is None or principal.status != domain.Status.ACTIVE:
            raise domain.PrincipalDisabled()
        existing = await tx.get_device(principal_id, candidate.device_id)
        if existing is not None:
            if not existing.same_registration(candidate):
                raise IdempotencyKeyReused("device_id", "public_key")
            return existing
        active_count = await tx.count_active_devices(principal_id)
        # A device becomes a second factor: once the principal has one (TOTP or another device), adding a device
        # needs a session that proved MFA, or a stolen password alone would mint a new second factor.
        proved_mfa = me.acr == domain.ACR_MFA and me.bound_method is None  # a payment's step-up is not enough
        if (principal.totp_enrolled or active_count > 0) and not proved_mfa:
            raise StepUpRequired("registering another device needs a session that proved a second factor")
        if active_count >= limits.DEVICES_PER_PRINCIPAL_MAX:
            raise FailedPrecondition(f"at most {limits.DEVICES_PER_PRINCIPAL_MAX} active devices; revoke one first")
        await tx.insert_device(candidate)
        registered = events.DeviceRegistered(
            principal_id=principal_id,
            device_id=candidate.device_id,
            platform=platform_to_proto(candidate.platform),
        )
        await audit.record(tx, registered, organization_id=organization_id, principal_id=principal_id, now_s=now_s)
        # Read back: what a replay returns is the stored row (times at the database's precision).
        stored = await tx.get_device(principal_id, candidate.device_id)
    assert stored is not None
    assert stored.public_key == candidate.public_key
    return stored


def _check_registration(
    candidate: Device, violations: list[FieldViolation], key_proof: bytes, attestation: bytes
) -> None:
    """Field violations first (a malformed key is DEVICE_KEY_INVALID), then the proof of possession, then the
    attestation."""
    if any(violation.field == "public_key" for violation in violations):
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise DeviceKeyInvalid(f"invalid request: {summary}", field_violations=violations)
    domain.raise_if(violations)
    check_key_proof(candidate, key_proof)
    check_attestation(candidate, attestation)


async def _audit_registration_refused(core: AuthCore, device: Device, reason: str, source: Source) -> None:
    refused = events.DeviceRegistrationRefused(
        principal_id=device.principal_id,
        device_id=device.device_id[: limits.DEVICE_TEXT_LENGTH_MAX],
        reason=reason,
        source=audit.event_source(source),
    )
    async with core.store.transaction() as tx:
        await audit.record(
            tx,
            refused,
            organization_id=device.organization_id,
            principal_id=device.principal_id,
            now_s=core.clock(),
            source=source,
        )


async def list_devices(
    core: AuthCore, *, page_size_requested: int, page_token: str, include_revoked: bool
) -> DevicePage:
    _, principal_id = _human_caller()
    size = page_size(page_size_requested)
    filters = {"principal": principal_id, "include_revoked": include_revoked}
    cursor = decode_page_token(page_token, filters)
    after = (float(cursor["t"]), str(cursor["id"])) if cursor is not None else None
    async with core.store.transaction() as tx:
        rows = await tx.list_devices(principal_id, include_revoked, after, size + 1)
    page, next_token = next_page(rows, size, lambda last: {"t": last.last_used_at, "id": last.device_id}, filters)
    return DevicePage(page, next_token)


def _device_request(device_id: str, request_id: str) -> None:
    violations: list[FieldViolation] = []
    if device_id == "":
        violations.append(FieldViolation("device_id", "is required"))
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)


async def _own_device(tx: AuthTransaction, principal_id: str, device_id: str) -> Device:
    device = await tx.get_device(principal_id, device_id, for_update=True)
    if device is None:
        raise domain.not_found("device")
    return device


async def rename_device(core: AuthCore, *, device_id: str, display_name: str, request_id: str) -> Device:
    organization_id, principal_id = _human_caller()
    _device_request(device_id, request_id)
    violations: list[FieldViolation] = []
    domain.check_display_name(display_name, "display_name", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        await _own_device(tx, principal_id, device_id)
        if not await core.claim_request(
            tx, organization_id, request_id, "rename_device", device_id, display_name.strip()
        ):
            await tx.rename_device(principal_id, device_id, display_name.strip())
        return await _own_device(tx, principal_id, device_id)


async def _revoke(
    tx: AuthTransaction,
    organization_id: str,
    principal_id: str,
    device_id: str | None,
    actor: str,
    *,
    reset_by_admin: bool,
    now_s: float,
) -> tuple[list[str], int]:
    """Revokes the device(s) and, in the same transaction, every session opened from them: their refresh tokens
    stop working at once. Audited (DeviceRevoked, SessionRevoked) and published on the auth event stream. Returns
    the device ids and the number of sessions revoked."""
    revoked_ids = await tx.revoke_devices(principal_id, device_id, now_s)
    session_count = 0
    for revoked_id in revoked_ids:
        session_ids = await tx.revoke_device_sessions(principal_id, revoked_id, REVOKE_CAUSE_DEVICE_REVOKED, now_s)
        await _audit_sessions_revoked(
            tx, organization_id, principal_id, session_ids, actor, REVOKE_CAUSE_DEVICE_REVOKED, now_s
        )
        session_count += len(session_ids)
        device_revoked = events.DeviceRevoked(
            principal_id=principal_id,
            device_id=revoked_id,
            actor_principal_id=actor,
            reset_by_admin=reset_by_admin,
        )
        await audit.record(
            tx,
            device_revoked,
            organization_id=organization_id,
            principal_id=principal_id,
            now_s=now_s,
            actor_principal_id=actor,
        )
    return revoked_ids, session_count


async def _audit_sessions_revoked(
    tx: AuthTransaction,
    organization_id: str,
    principal_id: str,
    session_ids: list[str],
    actor: str,
    cause: str,
    now_s: float,
) -> None:
    for session_id in session_ids:
        session_revoked = events.SessionRevoked(
            principal_id=principal_id, session_id=session_id, actor_principal_id=actor, cause=cause
        )
        await audit.record(
            tx,
            session_revoked,
            organization_id=organization_id,
            principal_id=principal_id,
            now_s=now_s,
            actor_principal_id=actor,
        )


async def _remove_passkeys(
    tx: AuthTransaction, organization_id: str, principal_id: str, actor: str, now_s: float
) -> tuple[int, int]:
    """An admin's reset also removes the member's passkeys (a lost phone may hold one, and a synced passkey can be
    registered again after recovery) and revokes the sessions a passkey opened. Audited as MfaChanged
    PASSKEY_REMOVED by the admin. Returns (passkeys removed, sessions revoked)."""
    passkey_ids = await tx.delete_principal_passkeys(principal_id, now_s)
    for passkey_id in passkey_ids:
        removed = events.MfaChanged(
            principal_id=principal_id,
            change=events.MFA_CHANGE_PASSKEY_REMOVED,
            actor_principal_id=actor,
            passkey_id=passkey_id,
        )
        await audit.record(
            tx,
            removed,
            organization_id=organization_id,
            principal_id=principal_id,
            now_s=now_s,
            actor_principal_id=actor,
        )
    session_ids = await tx.revoke_sessions_with_method(
        principal_id, AMR_HARDWARE_KEY, REVOKE_CAUSE_PASSKEY_REMOVED, now_s
    )
    await _audit_sessions_revoked(
        tx, organization_id, principal_id, session_ids, actor, REVOKE_CAUSE_PASSKEY_REMOVED, now_s
    )
    return len(passkey_ids), len(session_ids)


async def revoke_device(core: AuthCore, *, device_id: str, request_id: str) -> Device:
    organization_id, principal_id = _human_caller()
    _device_request(device_id, request_id)
    async with core.store.transaction() as tx:
        await _own_device(tx, principal_id, device_id)
        if not await core.claim_request(tx, organization_id, request_id, "revoke_device", device_id):
            await _revoke(
                tx, organization_id, principal_id, device_id, principal_id, reset_by_admin=False, now_s=core.clock()
            )
        return await _own_device(tx, principal_id, device_id)


@dataclass(frozen=True, slots=True)
class MemberReset:
    revoked_device_count: int
    removed_passkey_count: int
    revoked_session_count: int


async def reset_member_devices(core: AuthCore, *, member_id: str, request_id: str) -> MemberReset:
    """An admin revokes all of a member's devices and passkeys and the sessions they opened (lost phone), in one
    transaction; the member's DeviceRevoked events carry ``reset_by_admin`` so auth's member-mail job notifies
    them. All the reset's events share one instant: the job mails one notice per reset (``domain_member_mail``).
    A replay answers zeros."""
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(member_id, "member_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        member = await tx.get_principal(me.organization_id, member_id, kind=PRINCIPAL_KIND_MEMBER, for_update=True)
        if member is None:
            raise domain.not_found("member")
        if await core.claim_request(tx, me.organization_id, request_id, "reset_member_devices", member_id):
            return MemberReset(0, 0, 0)
        now_s = core.clock()
        revoked, device_sessions = await _revoke(
            tx, me.organization_id, member_id, None, me.subject, reset_by_admin=True, now_s=now_s
        )
        passkeys, passkey_sessions = await _remove_passkeys(tx, me.organization_id, member_id, me.subject, now_s)
        return MemberReset(len(revoked), passkeys, device_sessions + passkey_sessions)


# --- biometric step-up ------------------------------------------------------------------------------------------


def _method_can_be_approved(method: str) -> bool:
    """A declared, authenticated wallet method. Not only those whose policy always asks for step-up: the ledger's
    risk gate asks for one on a CHALLENGE decision of an ordinary CreateTransfer, and that is the payment a phone
    approves."""
    if not method.startswith("/wallet.") or method.count("/") != 2:
        return False
    policy = policy_for(method)
    return policy is not None and not policy.anonymous


async def create_device_challenge(core: AuthCore, *, device_id: str, operation: DeviceOperation) -> DeviceChallenge:
    me = caller()
    organization_id, principal_id = _human_caller()
    violations: list[FieldViolation] = []
    if device_id == "":
        violations.append(FieldViolation("device_id", "is required"))
    violations += operation_violations(operation, _method_can_be_approved(operation.method))
    domain.raise_if(violations)
    now_s = core.clock()
    challenge_id = str(uuid7(int(now_s * 1000)))
    expires_at_s = int(now_s) + limits.DEVICE_CHALLENGE_TTL_S
    async with core.store.transaction() as tx:
        device = await tx.get_device(principal_id, device_id)
        if device is None or not device.is_active:
            raise DeviceInvalid()
        challenge = DeviceChallenge(
            device_challenge_id=challenge_id,
            organization_id=organization_id,
            principal_id=principal_id,
            device_id=device_id,
            session_id=me.session_id,
            operation=operation,
            signing_payload=signing_payload(
                device_challenge_id=challenge_id,
                nonce=secrets.token_bytes(limits.DEVICE_CHALLENGE_NONCE_BYTES),
                organization_id=organization_id,
                principal_id=principal_id,
                device_id=device_id,
                operation=operation,
                expires_at_s=expires_at_s,
            ),
            expires_at=float(expires_at_s),
            used_at=None,
        )
        await tx.insert_device_challenge(challenge, sweep_before_s=now_s - limits.EXPIRED_CHALLENGE_KEEP_S)
    return challenge


def _check_step_up_request(device_challenge_id: str, signature: bytes, user_verification: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(device_challenge_id, "device_challenge_id", violations)
    if len(signature) == 0:
        violations.append(FieldViolation("signature", "is required"))
    if user_verification not in (USER_VERIFICATION_BIOMETRIC, USER_VERIFICATION_PASSCODE):
        violations.append(FieldViolation("user_verification", "is required"))
    domain.raise_if(violations)


async def step_up_with_device(
    core: AuthCore, *, device_challenge_id: str, signature: bytes, user_verification: str, source: Source
) -> DeviceStepUp:
    me = caller()
    organization_id, principal_id = _human_caller()
    _check_step_up_request(device_challenge_id, signature, user_verification)
    now_s = core.clock()
    session: Session | None = None
    principal: Principal | None = None
    async with core.store.transaction() as tx:
        challenge = await tx.lock_device_challenge(device_challenge_id)
        ours = challenge is not None and challenge.principal_id == principal_id
        device = await tx.get_device(principal_id, challenge.device_id) if ours and challenge is not None else None
        accepted = (
            challenge is not None
            and device is not None
            and device.is_active
            and challenge.usable(now_s)
            and signature_valid(device, signature, challenge.signing_payload)
        )
        if ours and challenge is not None and challenge.used_at is None:
            # Single use whatever the outcome: a wrong signature burns the challenge, so it cannot be guessed at.
            await tx.use_device_challenge(device_challenge_id, now_s)
        if accepted and device is not None:
            await tx.touch_device(principal_id, device.device_id, now_s)
            session = await tx.get_session(me.session_id) if me.session_id else None
            principal = await tx.get_principal(organization_id, principal_id)
    if not accepted or challenge is None or device is None:
        await _audit_step_up_failed(core, organization_id, principal_id, source)
        raise DeviceSignatureInvalid()
    if principal is None or principal.status != domain.Status.ACTIVE:
        raise domain.PrincipalDisabled()
    session_amr = session.amr if session is not None else (domain.AMR_PASSWORD,)
    subject = domain.TokenSubject(
        principal_id=principal_id,
        organization_id=organization_id,
        kind=principal.kind,
        roles=domain.token_roles(principal),
        scopes=(),
        amr=step_up_amr(session_amr, user_verification),
        auth_time_s=int(now_s),
        session_id=me.session_id,
        device_id=device.device_id,
        bound_method=challenge.operation.method,
        bound_resource_id=challenge.operation.resource_id,
        bound_currency=challenge.operation.amount_currency if challenge.operation.amount_minor is not None else None,
        bound_amount_minor=challenge.operation.amount_minor,
    )
    token = await core.mint(subject, ttl_s=limits.DEVICE_STEP_UP_TOKEN_TTL_S, acr=domain.ACR_MFA)
    succeeded = events.StepUpSucceeded(
        principal_id=principal_id,
        method=events.STEP_UP_METHOD_DEVICE,
        source=audit.event_source(replace(source, device_id=device.device_id)),
        bound_method=challenge.operation.method,
        bound_resource_id=challenge.operation.resource_id,
    )
    async with core.store.transaction() as tx:
        await audit.record(
            tx, succeeded, organization_id=organization_id, principal_id=principal_id, now_s=now_s, source=source
        )
    return DeviceStepUp(token, challenge.operation)


async def _audit_step_up_failed(core: AuthCore, organization_id: str, principal_id: str, source: Source) -> None:
    failed = events.StepUpFailed(
        principal_id=principal_id,
        method=events.STEP_UP_METHOD_DEVICE,
        source=audit.event_source(source),
        reason=DeviceSignatureInvalid.reason,
    )
    async with core.store.transaction() as tx:
        await audit.record(
            tx, failed, organization_id=organization_id, principal_id=principal_id, now_s=core.clock(), source=source
        )
