"""Use cases of signing in: password login (with brute-force protection) and the MFA second step, plus the
shared steps of checking a second factor and counting a failed credential."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from services.auth import audit, domain, limits, totp
from services.auth.brute_force import CounterKeys
from services.auth.core import AuthCore, IssuedTokens
from services.auth.domain import Organization, Principal, Status
from services.auth.domain_records import MfaChallenge, Source
from services.auth.proto_enums import kind_to_proto
from services.auth.service import AuthTransaction
from services.kit.errors import FieldViolation
from services.kit.ids import parse_uuid, uuid7
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

# Keys of unknown organizations still get counters (so probing slugs is throttled too) under this stand-in id.
UNKNOWN_ORGANIZATION = "unknown"


class LoginOutcome(enum.Enum):
    AUTHENTICATED = "authenticated"
    MFA_REQUIRED = "mfa_required"
    MFA_ENROLMENT_REQUIRED = "mfa_enrolment_required"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    tokens: IssuedTokens | None = None
    challenge: MfaChallenge | None = None


def _require(values: dict[str, str]) -> None:
    domain.raise_if([FieldViolation(name, "is required") for name, value in values.items() if value == ""])


async def login(
    core: AuthCore, *, organization_slug: str, login_name: str, password: str, source: Source
) -> LoginResult:
    _require({"organization_slug": organization_slug, "login": login_name, "password": password})
    async with core.store.transaction() as tx:
        organization = await tx.get_organization_by_slug(organization_slug)
        principal = None
        if organization is not None:
            principal = await tx.find_login(organization.organization_id, domain.normalize_email(login_name))
    organization_key = organization.organization_id if organization is not None else UNKNOWN_ORGANIZATION
    keys = core.guard.keys(organization_key, login_name, source.ip)
    await core.guard.check(keys)
    # Always one argon2 verification, against a dummy hash when the login is unknown: same cost either way.
    password_hash = (
        principal.password_hash if principal is not None and principal.kind != PRINCIPAL_KIND_SERVICE else None
    )
    if not await core.verify_password(password_hash, password) or principal is None or organization is None:
        await _failed(core, keys, organization, principal, source)
        raise domain.InvalidCredentials()
    if principal.status != Status.ACTIVE:
        await _record_failure(core, organization, principal, events.LOGIN_FAILURE_REASON_DISABLED, source, 0)
        raise domain.PrincipalDisabled()
    assert password_hash is not None
    if core.passwords.needs_rehash(password_hash):
        rehashed = await core.hash_password(password)
        async with core.store.transaction() as tx:
            await tx.set_password_hash(principal.principal_id, rehashed)
    if principal.totp_enrolled:
        # The account's failure counter is cleared only once the second factor is proven too: a known password
        # must not reset the count of wrong MFA codes.
        return LoginResult(LoginOutcome.MFA_REQUIRED, challenge=await _challenge(core, principal, source))
    await core.guard.clear(keys.account)
    enrolment_only = organization.policy.mfa_required
    async with core.store.transaction() as tx:
        new_device = await is_new_device(tx, principal, source)
        tokens = await core.open_session(
            tx,
            principal,
            amr=(domain.AMR_PASSWORD,),
            source=source,
            session_lifetime_s=organization.policy.session_max_lifetime_s,
            enrolment_only=enrolment_only,
        )
        await record_sign_in(core, tx, principal, tokens, (domain.AMR_PASSWORD,), source, new_device=new_device)
    outcome = LoginOutcome.MFA_ENROLMENT_REQUIRED if enrolment_only else LoginOutcome.AUTHENTICATED
    return LoginResult(outcome, tokens=tokens)


async def _challenge(core: AuthCore, principal: Principal, source: Source) -> MfaChallenge:
    now_s = core.clock()
    challenge = MfaChallenge(
        mfa_challenge_id=str(uuid7(int(now_s * 1000))),
        organization_id=principal.organization_id,
        principal_id=principal.principal_id,
        device_id=source.device_id,
        user_agent=source.user_agent[: limits.USER_AGENT_LENGTH_MAX],
        source_ip=source.ip,
        expires_at=now_s + limits.MFA_CHALLENGE_TTL_S,
        failed_attempts=0,
        used_at=None,
    )
    async with core.store.transaction() as tx:
        await tx.insert_challenge(challenge)
    return challenge


async def is_new_device(tx: AuthTransaction, principal: Principal, source: Source) -> bool:
    return source.device_id != "" and not await tx.device_seen(principal.principal_id, source.device_id)


async def record_sign_in(
    core: AuthCore,
    tx: AuthTransaction,
    principal: Principal,
    tokens: IssuedTokens,
    amr: tuple[str, ...],
    source: Source,
    *,
    new_device: bool,
) -> None:
    succeeded = events.LoginSucceeded(
        principal_id=principal.principal_id,
        principal_kind=kind_to_proto(principal.kind),
        session_id=tokens.session_id,
        amr=list(amr),
        source=audit.event_source(source),
        new_device=new_device,
    )
    if new_device:
        # A first sign-in from this device id: alerts (contacts) and risk consume this event.
        first_seen = events.NewDeviceLogin(
            principal_id=principal.principal_id,
            principal_kind=kind_to_proto(principal.kind),
            session_id=tokens.session_id,
            source=audit.event_source(source),
        )
        await audit.record(
            tx,
            first_seen,
            organization_id=principal.organization_id,
            principal_id=principal.principal_id,
            now_s=core.clock(),
            source=source,
        )
    await audit.record(
        tx,
        succeeded,
        organization_id=principal.organization_id,
        principal_id=principal.principal_id,
        now_s=core.clock(),
        source=source,
    )


async def _record_failure(
    core: AuthCore,
    organization: Organization,
    principal: Principal | None,
    reason: events.LoginFailureReason.ValueType,
    source: Source,
    failures: int,
) -> None:
    principal_id = principal.principal_id if principal is not None else ""
    failed = events.LoginFailed(
        principal_id=principal_id, reason=reason, source=audit.event_source(source), consecutive_failures=failures
    )
    async with core.store.transaction() as tx:
        await audit.record(
            tx,
            failed,
            organization_id=organization.organization_id,
            principal_id=principal_id,
            now_s=core.clock(),
            source=source,
        )


async def _failed(
    core: AuthCore, keys: CounterKeys, organization: Organization | None, principal: Principal | None, source: Source
) -> None:
    if organization is None:
        await core.guard.record_failure(keys)
        return  # no tenant to audit for; the counters still count
    await count_failure(
        core, keys, organization.organization_id, principal, source, events.LOGIN_FAILURE_REASON_INVALID_CREDENTIALS
    )


async def count_failure(
    core: AuthCore,
    keys: CounterKeys,
    organization_id: str,
    principal: Principal | None,
    source: Source,
    reason: events.LoginFailureReason.ValueType | None,
) -> None:
    """Counts a wrong password or code against the account and the source; audits it (when ``reason`` is given)
    and any lockout it caused."""
    outcome = await core.guard.record_failure(keys)
    principal_id = principal.principal_id if principal is not None else ""
    async with core.store.transaction() as tx:
        if reason is not None:
            failed = events.LoginFailed(
                principal_id=principal_id,
                reason=reason,
                source=audit.event_source(source),
                consecutive_failures=outcome.account.failures,
            )
            await audit.record(
                tx,
                failed,
                organization_id=organization_id,
                principal_id=principal_id,
                now_s=core.clock(),
                source=source,
            )
        for scope, locked in (
            (events.LOCKOUT_SCOPE_PRINCIPAL, outcome.account_locked_now),
            (events.LOCKOUT_SCOPE_SOURCE, outcome.source_locked_now),
        ):
            if not locked:
                continue
            until = Timestamp()
            until.FromNanoseconds(int((outcome.account.locked_until or core.clock()) * 1e9))
            locked_out = events.PrincipalLockedOut(
                principal_id=principal_id,
                scope=scope,
                source=audit.event_source(source),
                locked_until=until,
                failures=outcome.account.failures,
            )
            await audit.record(
                tx,
                locked_out,
                organization_id=organization_id,
                principal_id=principal_id,
                now_s=core.clock(),
                source=source,
            )


async def verify_second_factor(
    core: AuthCore, tx: AuthTransaction, principal: Principal, *, totp_code: str, recovery_code: str
) -> bool:
    """Checks a TOTP code (refusing one already used in its window) or consumes a recovery code."""
    now_s = core.clock()
    if recovery_code:
        digest = core.recovery_hash.digest(totp.normalize_recovery_code(recovery_code))
        used = await tx.use_recovery_code(principal.principal_id, digest, now_s)
        if used:
            change = events.MfaChanged(
                principal_id=principal.principal_id,
                change=events.MFA_CHANGE_RECOVERY_CODE_USED,
                actor_principal_id=principal.principal_id,
            )
            await audit.record(
                tx,
                change,
                organization_id=principal.organization_id,
                principal_id=principal.principal_id,
                now_s=now_s,
            )
        return used
    sealed, _, _ = await tx.totp_secrets(principal.principal_id)
    if sealed is None:
        return False
    secret = core.totp_sealer.open(sealed, principal.principal_id.encode()).decode()
    step = totp.matching_step(secret, totp_code, now_s, principal.totp_last_step)
    return step is not None and await tx.set_totp_last_step(principal.principal_id, step)


@dataclass(frozen=True, slots=True)
class MfaResult:
    tokens: IssuedTokens
    recovery_codes_left: int


async def verify_mfa(
    core: AuthCore, *, mfa_challenge_id: str, totp_code: str, recovery_code: str, source: Source
) -> MfaResult:
    violations: list[FieldViolation] = []
    parse_uuid(mfa_challenge_id, "mfa_challenge_id", violations)
    if totp_code == "" and recovery_code == "":
        violations.append(FieldViolation("factor", "a totp_code or a recovery_code is required"))
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        peeked = await tx.lock_challenge(mfa_challenge_id)
        owner = await tx.get_principal(peeked.organization_id, peeked.principal_id) if peeked else None
    if owner is None:
        raise domain.MfaChallengeInvalid()
    # Wrong codes count against the account like wrong passwords, and a locked account cannot finish a login.
    keys = core.guard.keys(owner.organization_id, owner.email or "", source.ip)
    await core.guard.check(keys)
    now_s = core.clock()
    async with core.store.transaction() as tx:
        challenge = await tx.lock_challenge(mfa_challenge_id)
        usable = (
            challenge is not None
            and challenge.used_at is None
            and challenge.expires_at > now_s
            and challenge.failed_attempts < limits.MFA_CHALLENGE_ATTEMPTS_MAX
        )
        if not usable or challenge is None:
            raise domain.MfaChallengeInvalid()
        principal = await tx.get_principal(challenge.organization_id, challenge.principal_id, for_update=True)
        organization = await tx.get_organization(challenge.organization_id)
        assert principal is not None
        assert organization is not None
        ok = principal.status == Status.ACTIVE and await verify_second_factor(
            core, tx, principal, totp_code=totp_code, recovery_code=recovery_code
        )
        if ok:
            await tx.finish_challenge(mfa_challenge_id, now_s)
            amr = (domain.AMR_PASSWORD, domain.AMR_OTP)
            session_source = Source(challenge.source_ip, challenge.user_agent, challenge.device_id)
            new_device = await is_new_device(tx, principal, session_source)
            tokens = await core.open_session(
                tx,
                principal,
                amr=amr,
                source=session_source,
                session_lifetime_s=organization.policy.session_max_lifetime_s,
                enrolment_only=False,
            )
            await record_sign_in(core, tx, principal, tokens, amr, session_source, new_device=new_device)
            left = await tx.recovery_codes_left(principal.principal_id)
        else:
            await tx.fail_challenge(mfa_challenge_id)
    if not ok:
        await count_failure(
            core, keys, organization.organization_id, principal, source, events.LOGIN_FAILURE_REASON_MFA_CODE_INVALID
        )
        raise domain.MfaCodeInvalid()
    await core.guard.clear(keys.account)
    return MfaResult(tokens, left)
