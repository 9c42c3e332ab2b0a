"""Use cases of one's own credentials: password change (revokes the other sessions), TOTP enrolment, removal and
recovery codes."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth import audit, domain, limits, totp
from services.auth.core import AuthCore, caller
from services.auth.domain import Principal, Status
from services.auth.domain_records import Source
from services.auth.passwords import password_problems
from services.auth.service import AuthTransaction
from services.auth.service_login import count_failure
from services.auth.service_sessions import revoke_sessions
from services.kit.errors import FailedPrecondition, FieldViolation
from services.kit.ids import parse_uuid
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

REVOKE_CAUSE_PASSWORD_CHANGED = "password_changed"  # noqa: S105


async def _me(tx: AuthTransaction) -> Principal:
    me = caller()
    if me.kind == PRINCIPAL_KIND_SERVICE:
        raise FailedPrecondition("service accounts have no password or second factor")
    principal = await tx.get_principal(me.organization_id, me.subject, for_update=True)
    if principal is None or principal.status != Status.ACTIVE:
        raise domain.PrincipalDisabled()
    return principal


async def _mfa_changed(
    core: AuthCore, tx: AuthTransaction, principal: Principal, change: events.MfaChange.ValueType
) -> None:
    payload = events.MfaChanged(
        principal_id=principal.principal_id,
        change=change,
        actor_principal_id=principal.principal_id,
    )
    await audit.record(
        tx,
        payload,
        organization_id=principal.organization_id,
        principal_id=principal.principal_id,
        now_s=core.clock(),
        actor_principal_id=principal.principal_id,
    )


async def change_password(
    core: AuthCore, *, current_password: str, new_password: str, request_id: str, source: Source
) -> int:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(request_id, "request_id", violations)
    if current_password == "":
        violations.append(FieldViolation("current_password", "is required"))
    async with core.store.transaction() as tx:
        principal = await _me(tx)
        organization = await tx.get_organization(me.organization_id)
        assert organization is not None
        violations += domain.password_violations(
            password_problems(new_password, organization.policy.password_min_length), "new_password"
        )
        domain.raise_if(violations, password_field="new_password")  # noqa: S106
        if await core.claim_request(tx, me.organization_id, request_id, "change_password", me.subject):
            return 0
        # Counted like a failed login: a stolen access token must not allow guessing the password.
        keys = core.guard.keys(me.organization_id, principal.email or "", source.ip)
        await core.guard.check(keys)
        if not await core.verify_password(principal.password_hash, current_password):
            await count_failure(
                core, keys, me.organization_id, principal, source, events.LOGIN_FAILURE_REASON_INVALID_CREDENTIALS
            )
            raise domain.InvalidCredentials()
        await tx.set_password_hash(me.subject, await core.hash_password(new_password))
        revoked = await revoke_sessions(
            core,
            tx,
            me.subject,
            me.organization_id,
            me.subject,
            REVOKE_CAUSE_PASSWORD_CHANGED,
            except_session_id=me.session_id,
        )
        changed = events.PasswordChanged(principal_id=me.subject, revoked_session_count=revoked)
        await audit.record(
            tx, changed, organization_id=me.organization_id, principal_id=me.subject, now_s=core.clock()
        )
    return revoked


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    provisioning_uri: str
    secret_base32: str
    expires_at: float


async def enroll_totp(core: AuthCore) -> TotpEnrolment:
    async with core.store.transaction() as tx:
        principal = await _me(tx)
        if principal.totp_enrolled:
            raise FailedPrecondition("TOTP is already enrolled; remove it first")
        organization = await tx.get_organization(principal.organization_id)
        assert organization is not None
        secret = totp.new_secret()
        expires_at = core.clock() + limits.TOTP_ENROLMENT_TTL_S
        sealed = core.totp_sealer.seal(secret.encode(), principal.principal_id.encode())
        await tx.set_pending_totp(principal.principal_id, sealed, expires_at)
    uri = totp.provisioning_uri(secret, principal.email or principal.principal_id, organization.slug)
    return TotpEnrolment(uri, secret, expires_at)


async def _new_recovery_codes(core: AuthCore, tx: AuthTransaction, principal_id: str) -> list[str]:
    codes = totp.new_recovery_codes()
    hashes = [core.recovery_hash.digest(totp.normalize_recovery_code(code)) for code in codes]
    await tx.replace_recovery_codes(principal_id, hashes)
    return codes


async def confirm_totp(core: AuthCore, *, totp_code: str) -> list[str]:
    me = caller()
    if totp_code == "":
        domain.raise_if([FieldViolation("totp_code", "is required")])
    now_s = core.clock()
    async with core.store.transaction() as tx:
        principal = await _me(tx)
        _, pending, pending_expires_at = await tx.totp_secrets(principal.principal_id)
        if pending is None or pending_expires_at is None or pending_expires_at <= now_s:
            raise FailedPrecondition("no TOTP enrolment in progress; call EnrollTotp first")
        secret = core.totp_sealer.open(pending, principal.principal_id.encode()).decode()
        step = totp.matching_step(secret, totp_code, now_s, 0)
        if step is None:
            raise domain.MfaCodeInvalid()
        await tx.activate_totp(principal.principal_id, pending, step)
        codes = await _new_recovery_codes(core, tx, principal.principal_id)
        if me.session_id is not None:
            # The enrolment proved the second factor: the session is no longer restricted to enrolment.
            session = await tx.get_session(me.session_id)
            if session is not None:
                amr = tuple(dict.fromkeys((*session.amr, domain.AMR_OTP)))
                await tx.update_session(me.session_id, amr=amr, enrolment_only=False)
        await _mfa_changed(core, tx, principal, events.MFA_CHANGE_TOTP_ENROLLED)
    return codes


async def remove_totp(core: AuthCore, *, request_id: str) -> float:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        principal = await _me(tx)
        if await core.claim_request(tx, me.organization_id, request_id, "remove_totp", me.subject):
            return core.clock()
        organization = await tx.get_organization(me.organization_id)
        assert organization is not None
        if organization.policy.mfa_required:
            raise FailedPrecondition("the organization requires MFA; TOTP cannot be removed")
        if not principal.totp_enrolled:
            raise FailedPrecondition("TOTP is not enrolled")
        await tx.remove_totp(principal.principal_id)
        await _mfa_changed(core, tx, principal, events.MFA_CHANGE_TOTP_REMOVED)
    return core.clock()


async def regenerate_recovery_codes(core: AuthCore) -> list[str]:
    async with core.store.transaction() as tx:
        principal = await _me(tx)
        if not principal.totp_enrolled:
            raise FailedPrecondition("TOTP is not enrolled")
        codes = await _new_recovery_codes(core, tx, principal.principal_id)
        await _mfa_changed(core, tx, principal, events.MFA_CHANGE_RECOVERY_CODES_REGENERATED)
    return codes
