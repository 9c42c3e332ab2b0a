"""Use cases of service accounts: create (secret shown once, stored hashed), list, rotate the secret (the previous
one keeps working for an overlap), disable, and the client-credentials grant (``IssueServiceToken``).

Platform service accounts live in the reserved ``platform`` organization; they alone may name the tenant a token is
for, and they alone hold platform-only scopes (see ``bootstrap.py``)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace

from services.auth import audit, domain, limits
from services.auth.core import AccessToken, AuthCore, caller
from services.auth.domain import Principal, Status
from services.auth.permissions import grantable_by
from services.auth.proto_enums import kind_to_proto, status_to_proto
from services.auth.sealing import sha256
from services.auth.service import AuthTransaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, InvalidArgument
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

CLIENT_SECRET_BYTES = 32
AMR_CLIENT_SECRET = "client_secret"  # noqa: S105


def new_client_secret() -> str:
    return secrets.token_urlsafe(CLIENT_SECRET_BYTES)


@dataclass(frozen=True, slots=True)
class CreatedServiceAccount:
    service_account: Principal
    client_secret: str  # empty on a replay


async def insert_service_account(
    core: AuthCore,
    tx: AuthTransaction,
    *,
    organization_id: str,
    service_account_id: str,
    display_name: str,
    scopes: tuple[str, ...],
    actor: str,
) -> CreatedServiceAccount:
    now_s = core.clock()
    wanted = Principal(
        organization_id=organization_id,
        principal_id=service_account_id,
        kind=PRINCIPAL_KIND_SERVICE,
        email=None,
        display_name=display_name.strip(),
        external_reference=None,
        roles=(),
        scopes=scopes,
        status=Status.ACTIVE,
        password_hash=None,
        totp_enrolled=False,
        totp_last_step=0,
        created_at=now_s,
        last_login_at=None,
        secret_rotated_at=now_s,
    )
    existing = await tx.get_principal(organization_id, service_account_id, kind=PRINCIPAL_KIND_SERVICE)
    if existing is None and await tx.principal_exists(service_account_id):
        raise IdempotencyKeyReused("service_account_id", "organization")
    if existing is not None:
        for field in ("display_name", "scopes"):
            if getattr(existing, field) != getattr(wanted, field):
                raise IdempotencyKeyReused("service_account_id", field)
        return CreatedServiceAccount(existing, "")
    secret = new_client_secret()
    await tx.insert_principal(wanted, client_secret_hash=sha256(secret))
    created = events.PrincipalCreated(
        principal_id=service_account_id,
        principal_kind=kind_to_proto(PRINCIPAL_KIND_SERVICE),
        actor_principal_id=actor,
    )
    await audit.record(
        tx,
        created,
        organization_id=organization_id,
        principal_id=service_account_id,
        now_s=now_s,
        actor_principal_id=actor,
    )
    return CreatedServiceAccount(wanted, secret)


async def create_service_account(
    core: AuthCore, *, service_account_id: str, display_name: str, scopes: list[str]
) -> CreatedServiceAccount:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(service_account_id, "service_account_id", violations)
    domain.check_display_name(display_name, "display_name", violations)
    domain.check_scopes(scopes, grantable_by(me.roles, me.scopes, platform=False), "scopes", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        return await insert_service_account(
            core,
            tx,
            organization_id=me.organization_id,
            service_account_id=service_account_id,
            display_name=display_name,
            scopes=tuple(sorted(set(scopes))),
            actor=me.subject,
        )


@dataclass(frozen=True, slots=True)
class ServiceAccountPage:
    service_accounts: list[Principal]
    next_page_token: str


async def list_service_accounts(
    core: AuthCore, *, page_size_requested: int, page_token: str, status: Status | None
) -> ServiceAccountPage:
    me = caller()
    size = page_size(page_size_requested)
    filters = {"status": status.value if status else None}
    cursor = decode_page_token(page_token, filters)
    async with core.store.transaction() as tx:
        rows = await tx.list_principals(
            me.organization_id,
            PRINCIPAL_KIND_SERVICE,
            status=status,
            role=None,
            email=None,
            external_reference=None,
            order_by_email=False,
            after=("", str(cursor["id"])) if cursor is not None else None,
            limit=size + 1,
        )
    page, next_token = next_page(rows, size, lambda last: {"id": last.principal_id}, filters)
    return ServiceAccountPage(page, next_token)


def _validate_target(service_account_id: str, request_id: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(service_account_id, "service_account_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    service_account: Principal
    client_secret: str  # empty on a replay
    previous_secret_expires_at: float


async def rotate_service_account_secret(core: AuthCore, *, service_account_id: str, request_id: str) -> RotatedSecret:
    me = caller()
    _validate_target(service_account_id, request_id)
    now_s = core.clock()
    async with core.store.transaction() as tx:
        account = await tx.get_principal(
            me.organization_id, service_account_id, kind=PRINCIPAL_KIND_SERVICE, for_update=True
        )
        if account is None:
            raise domain.not_found("service account")
        if await core.claim_request(tx, me.organization_id, request_id, "rotate_secret", service_account_id):
            return RotatedSecret(
                account, "", (account.secret_rotated_at or now_s) + core.settings.service_account_secret_overlap_s
            )
        secret = new_client_secret()
        expires_at = now_s + core.settings.service_account_secret_overlap_s
        await tx.set_client_secret(service_account_id, sha256(secret), expires_at, now_s)
        rotated = events.ServiceAccountSecretRotated(
            service_account_id=service_account_id, actor_principal_id=me.subject
        )
        await audit.record(
            tx,
            rotated,
            organization_id=me.organization_id,
            principal_id=service_account_id,
            now_s=now_s,
            actor_principal_id=me.subject,
        )
    return RotatedSecret(replace(account, secret_rotated_at=now_s), secret, expires_at)


async def disable_service_account(core: AuthCore, *, service_account_id: str, request_id: str) -> Principal:
    me = caller()
    _validate_target(service_account_id, request_id)
    async with core.store.transaction() as tx:
        account = await tx.get_principal(
            me.organization_id, service_account_id, kind=PRINCIPAL_KIND_SERVICE, for_update=True
        )
        if account is None:
            raise domain.not_found("service account")
        replay = await core.claim_request(tx, me.organization_id, request_id, "disable", service_account_id)
        if replay or account.status == Status.DISABLED:
            return account
        await tx.set_status(service_account_id, Status.DISABLED)
        changed = events.PrincipalStatusChanged(
            principal_id=service_account_id,
            principal_kind=kind_to_proto(PRINCIPAL_KIND_SERVICE),
            previous_status=status_to_proto(account.status),
            status=status_to_proto(Status.DISABLED),
            actor_principal_id=me.subject,
        )
        await audit.record(
            tx,
            changed,
            organization_id=me.organization_id,
            principal_id=service_account_id,
            now_s=core.clock(),
            actor_principal_id=me.subject,
        )
    return replace(account, status=Status.DISABLED)


def _secret_matches(secret: str, hashes: dict[str, object], now_s: float) -> bool:
    presented = sha256(secret)
    current = hashes["current"]
    previous = hashes["previous"]
    previous_expires_at = hashes["previous_expires_at"]
    ok = isinstance(current, bytes) and hmac.compare_digest(presented, current)
    if isinstance(previous, bytes) and isinstance(previous_expires_at, float) and previous_expires_at > now_s:
        ok = hmac.compare_digest(presented, previous) or ok
    return ok


async def issue_service_token(
    core: AuthCore, *, client_id: str, client_secret: str, scopes: list[str], organization_id: str
) -> tuple[AccessToken, tuple[str, ...]]:
    violations: list[FieldViolation] = []
    parse_uuid(client_id, "client_id", violations)
    if client_secret == "":
        violations.append(FieldViolation("client_secret", "is required"))
    parse_uuid(organization_id, "organization_id", violations, required=False)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        found = await tx.get_service_account(client_id)
        if found is None or not _secret_matches(client_secret, found[1], core.clock()):
            raise domain.InvalidCredentials()
        account = found[0]
        if account.status != Status.ACTIVE:
            raise domain.PrincipalDisabled()
        home = await tx.get_organization(account.organization_id)
        assert home is not None
        tenant = account.organization_id
        if organization_id:
            if not home.is_platform:
                raise InvalidArgument(
                    "only platform service accounts may name a tenant",
                    field_violations=[
                        FieldViolation("organization_id", "must be empty for a tenant's service account")
                    ],
                )
            if await tx.get_organization(organization_id) is None:
                raise domain.not_found("organization")
            tenant = organization_id
    granted = domain.granted_scopes(scopes, account.scopes)
    subject = domain.TokenSubject(
        principal_id=account.principal_id,
        organization_id=tenant,
        kind=PRINCIPAL_KIND_SERVICE,
        roles=(),
        scopes=granted,
        amr=(AMR_CLIENT_SECRET,),
        auth_time_s=int(core.clock()),
    )
    token = await core.mint(subject, ttl_s=limits.SERVICE_TOKEN_TTL_S, acr="")
    return token, granted
