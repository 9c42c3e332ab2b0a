"""Use cases of sessions: refresh-token rotation (grace window, reuse detection), logout, step-up, listing and
revoking one's sessions, and who-am-I."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth import audit, domain, limits
from services.auth.core import AccessToken, AuthCore, IssuedTokens, caller
from services.auth.domain import Organization, Principal, RefreshOutcome, Status
from services.auth.domain_records import Session, Source
from services.auth.sealing import sha256
from services.auth.service import AuthTransaction
from services.auth.service_login import count_failure, verify_second_factor
from services.kit.errors import FailedPrecondition, FieldViolation, Unauthenticated
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

REVOKE_CAUSE_LOGOUT = "logout"
REVOKE_CAUSE_REUSE = "refresh_token_reused"
REVOKE_CAUSE_REVOKED = "revoked_by_principal"


async def refresh_token(core: AuthCore, *, refresh_token_value: str, source: Source) -> IssuedTokens:
    if refresh_token_value == "":
        domain.raise_if([FieldViolation("refresh_token", "is required")])
    now_s = core.clock()
    reused = False
    async with core.store.transaction() as tx:
        row = await tx.lock_refresh_token(sha256(refresh_token_value))
        if row is None:
            raise domain.RefreshTokenInvalid()
        session = await tx.get_session(row.session_id, for_update=True)
        assert session is not None
        organization = await tx.get_organization(session.organization_id)
        assert organization is not None
        if not session.is_live(now_s, organization.policy.session_idle_timeout_s):
            raise domain.RefreshTokenInvalid()
        successor_used = row.successor_hash is not None and await tx.refresh_token_rotated(row.successor_hash)
        outcome = domain.refresh_outcome(row.rotated_at, successor_used, now_s, core.settings.refresh_grace_s)
        if outcome == RefreshOutcome.REUSED:
            await _revoke_for_reuse(core, tx, session, source)
            reused = True
        else:
            principal = await tx.get_principal(session.organization_id, session.principal_id)
            assert principal is not None
            if principal.status != Status.ACTIVE:
                raise domain.RefreshTokenInvalid()
            device = await tx.get_device(session.principal_id, session.device_id) if session.device_id else None
            if device is not None and device.revoked_at is not None and session.created_at <= device.revoked_at:
                # RevokeDevice revoked these sessions already: a second lock on the same door. (A session opened
                # later from the same installation is merely untrusted: no `did`.)
                raise domain.RefreshTokenInvalid()
            trusted_device_id = device.device_id if device is not None and device.is_active else None
            successor = core.successor_of(refresh_token_value)
            if outcome == RefreshOutcome.ROTATE:
                await tx.insert_refresh_token(sha256(successor), session.session_id, now_s)
                await tx.mark_rotated(row.token_hash, sha256(successor), now_s)
                await tx.touch_session(session.session_id, now_s)
    if reused:
        raise domain.RefreshTokenReused()
    assert principal is not None
    # Roles are read again at every refresh: a role change takes effect with the next access token.
    return await core.tokens_for(principal, session, successor, trusted_device_id)


async def _revoke_for_reuse(core: AuthCore, tx: AuthTransaction, session: Session, source: Source) -> None:
    now_s = core.clock()
    await tx.revoke_session(session.session_id, REVOKE_CAUSE_REUSE, now_s)
    reused = events.RefreshTokenReused(
        principal_id=session.principal_id, session_id=session.session_id, source=audit.event_source(source)
    )
    await audit.record(
        tx,
        reused,
        organization_id=session.organization_id,
        principal_id=session.principal_id,
        now_s=now_s,
        source=source,
    )
    await _audit_revoked(
        core, tx, session.organization_id, session.principal_id, session.session_id, "", REVOKE_CAUSE_REUSE
    )


async def _audit_revoked(
    core: AuthCore,
    tx: AuthTransaction,
    organization_id: str,
    principal_id: str,
    session_id: str,
    actor: str,
    cause: str,
) -> None:
    revoked = events.SessionRevoked(
        principal_id=principal_id, session_id=session_id, actor_principal_id=actor, cause=cause
    )
    await audit.record(
        tx,
        revoked,
        organization_id=organization_id,
        principal_id=principal_id,
        now_s=core.clock(),
        actor_principal_id=actor,
    )


async def revoke_sessions(
    core: AuthCore,
    tx: AuthTransaction,
    principal_id: str,
    organization_id: str,
    actor: str,
    cause: str,
    *,
    except_session_id: str | None = None,
) -> int:
    revoked = await tx.revoke_sessions_of(principal_id, cause, core.clock(), except_session_id=except_session_id)
    for session_id in revoked:
        await _audit_revoked(core, tx, organization_id, principal_id, session_id, actor, cause)
    return len(revoked)


async def logout(core: AuthCore, *, all_sessions: bool) -> int:
    me = caller()
    async with core.store.transaction() as tx:
        if all_sessions:
            return await revoke_sessions(core, tx, me.subject, me.organization_id, me.subject, REVOKE_CAUSE_LOGOUT)
        if me.session_id is None:
            return 0
        revoked = await tx.revoke_session(me.session_id, REVOKE_CAUSE_LOGOUT, core.clock())
        if revoked:
            await _audit_revoked(
                core, tx, me.organization_id, me.subject, me.session_id, me.subject, REVOKE_CAUSE_LOGOUT
            )
        return int(revoked)


async def step_up(core: AuthCore, *, totp_code: str, source: Source) -> AccessToken:
    """StepUp with a TOTP code (a passkey factor goes to service_passkeys.step_up_with_passkey)."""
    me = caller()
    if totp_code == "":
        domain.raise_if([FieldViolation("totp_code", "is required")])
    if me.kind == PRINCIPAL_KIND_SERVICE:
        raise FailedPrecondition("service accounts have no second factor")
    async with core.store.transaction() as tx:
        owner = await tx.get_principal(me.organization_id, me.subject)
    if owner is None:
        raise domain.PrincipalDisabled()
    # A stolen access token must not allow unlimited code guessing: step-up failures count like login failures.
    keys = core.guard.keys(owner.organization_id, owner.email or "", source.ip)
    await core.guard.check(keys)
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(me.organization_id, me.subject, for_update=True)
        if principal is None or principal.status != Status.ACTIVE:
            raise domain.PrincipalDisabled()
        if not principal.totp_enrolled:
            raise domain.MfaEnrolmentRequired("enrol TOTP before stepping up")
        ok = await verify_second_factor(core, tx, principal, totp_code=totp_code, recovery_code="")
        session = await tx.get_session(me.session_id) if me.session_id else None
        if session is not None and session.revoked_at is not None:
            raise Unauthenticated("the session of this token was revoked")
        payload = (
            events.StepUpSucceeded(
                principal_id=me.subject, method=events.STEP_UP_METHOD_TOTP, source=audit.event_source(source)
            )
            if ok
            else events.StepUpFailed(
                principal_id=me.subject,
                method=events.STEP_UP_METHOD_TOTP,
                source=audit.event_source(source),
                reason="MFA_CODE_INVALID",
            )
        )
    # The failure is recorded in its own transaction: the step's check above must not roll it back.
    async with core.store.transaction() as tx:
        await audit.record(
            tx,
            payload,
            organization_id=me.organization_id,
            principal_id=me.subject,
            now_s=core.clock(),
            source=source,
        )
    if not ok:
        # StepUpFailed above is the audit record; count_failure adds any lockout it causes.
        await count_failure(core, keys, me.organization_id, principal, source, None)
        raise domain.MfaCodeInvalid()
    amr = tuple(dict.fromkeys((*(session.amr if session else (domain.AMR_PASSWORD,)), domain.AMR_OTP)))
    subject = domain.TokenSubject(
        principal_id=principal.principal_id,
        organization_id=principal.organization_id,
        kind=principal.kind,
        roles=domain.token_roles(principal),
        scopes=(),
        amr=amr,
        auth_time_s=int(core.clock()),
        session_id=me.session_id,
        device_id=me.device_id,
    )
    return await core.mint(subject, ttl_s=limits.STEP_UP_TOKEN_TTL_S, acr=domain.ACR_MFA)


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[Session]
    next_page_token: str
    current_session_id: str | None


async def list_sessions(core: AuthCore, *, page_size_requested: int, page_token: str) -> SessionPage:
    me = caller()
    size = page_size(page_size_requested)
    filters = {"principal": me.subject}
    cursor = decode_page_token(page_token, filters)
    after = (float(cursor["t"]), str(cursor["id"])) if cursor is not None else None
    async with core.store.transaction() as tx:
        rows = await tx.list_sessions(me.organization_id, me.subject, core.clock(), after, size + 1)
    page, next_token = next_page(rows, size, lambda last: {"t": last.last_used_at, "id": last.session_id}, filters)
    return SessionPage(page, next_token, me.session_id)


async def revoke_session(core: AuthCore, *, session_id: str, request_id: str) -> Session:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(session_id, "session_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        session = await tx.get_session(session_id, for_update=True)
        # Only one's own sessions: another principal's (or tenant's) session does not exist for the caller.
        if session is None or session.organization_id != me.organization_id or session.principal_id != me.subject:
            raise domain.not_found("session")
        if await core.claim_request(tx, me.organization_id, request_id, "revoke_session", session_id):
            return session
        if await tx.revoke_session(session_id, REVOKE_CAUSE_REVOKED, core.clock()):
            await _audit_revoked(
                core, tx, me.organization_id, me.subject, session_id, me.subject, REVOKE_CAUSE_REVOKED
            )
        revoked = await tx.get_session(session_id)
    assert revoked is not None
    return revoked


@dataclass(frozen=True, slots=True)
class CurrentPrincipal:
    principal: Principal
    organization: Organization
    recovery_codes_left: int


async def get_current_principal(core: AuthCore) -> CurrentPrincipal:
    me = caller()
    async with core.store.transaction() as tx:
        if me.kind == PRINCIPAL_KIND_SERVICE:
            found = await tx.get_service_account(me.subject)
            principal = found[0] if found is not None else None
        else:
            principal = await tx.get_principal(me.organization_id, me.subject)
        organization = await tx.get_organization(me.organization_id)
        if principal is None or organization is None:
            raise domain.not_found("principal")
        left = await tx.recovery_codes_left(me.subject)
    return CurrentPrincipal(principal, organization, left)
