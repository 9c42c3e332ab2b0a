"""Use cases of members and customers: invitations, self sign-up, reads, roles, disable/enable/unlock.

Members and customers share one table and most rules; ``kind`` says which one an RPC works on, and a principal of
the other kind (or of another organization) is NOT_FOUND.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from services.auth import audit, domain, limits
from services.auth.core import AuthCore, IssuedTokens, caller
from services.auth.domain import Principal, Status
from services.auth.domain_records import Source
from services.auth.passwords import password_problems
from services.auth.proto_enums import kind_to_proto, role_to_proto, status_to_proto
from services.auth.sealing import sha256
from services.auth.service import AuthTransaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, PermissionDenied
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER
from wallet.auth.v1 import auth_events_pb2 as events

INVITATION_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class PrincipalView:
    principal: Principal
    locked_until: float | None


@dataclass(frozen=True, slots=True)
class Invitation:
    token: str  # empty on an idempotent replay
    expires_at: float


@dataclass(frozen=True, slots=True)
class PrincipalPage:
    principals: list[PrincipalView]
    next_page_token: str


def kind_name(kind: str) -> str:
    return "member" if kind == PRINCIPAL_KIND_MEMBER else "customer"


async def principal_views(core: AuthCore, principals: list[Principal]) -> list[PrincipalView]:
    keys = [core.guard.keys(p.organization_id, p.email or "", "").account for p in principals]
    locked = await core.guard.locked_until(keys)
    return [PrincipalView(p, until) for p, until in zip(principals, locked, strict=True)]


async def principal_view(core: AuthCore, principal: Principal) -> PrincipalView:
    return (await principal_views(core, [principal]))[0]


async def _new_invitation(core: AuthCore, tx: AuthTransaction, principal: Principal) -> Invitation:
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    expires_at = core.clock() + limits.INVITATION_TTL_S
    await tx.insert_invitation(sha256(token), principal.organization_id, principal.principal_id, expires_at)
    return Invitation(token, expires_at)


def _new_principal(
    organization_id: str,
    principal_id: str,
    kind: str,
    *,
    email: str,
    display_name: str,
    roles: tuple[str, ...],
    now_s: float,
    status: Status = Status.INVITED,
    password_hash: str | None = None,
    external_reference: str | None = None,
) -> Principal:
    return Principal(
        organization_id=organization_id,
        principal_id=principal_id,
        kind=kind,
        email=email,
        display_name=display_name.strip(),
        external_reference=external_reference,
        roles=roles,
        scopes=(),
        status=status,
        password_hash=password_hash,
        totp_enrolled=False,
        totp_last_step=0,
        created_at=now_s,
        last_login_at=None,
    )


def _check_replay(existing: Principal, wanted: Principal, id_field: str) -> None:
    for field in ("kind", "email", "display_name", "roles", "external_reference"):
        if getattr(existing, field) != getattr(wanted, field):
            raise IdempotencyKeyReused(id_field, field)


async def _create_invited(core: AuthCore, wanted: Principal, id_field: str) -> tuple[PrincipalView, Invitation]:
    me = caller()
    async with core.store.transaction() as tx:
        existing = await tx.get_principal(wanted.organization_id, wanted.principal_id)
        if existing is None and await tx.principal_exists(wanted.principal_id):
            raise IdempotencyKeyReused(id_field, "organization")
        if existing is not None:
            _check_replay(existing, wanted, id_field)
            return await principal_view(core, existing), Invitation("", 0.0)
        await tx.insert_principal(wanted)
        invitation = await _new_invitation(core, tx, wanted)
        created = events.PrincipalCreated(
            principal_id=wanted.principal_id,
            principal_kind=kind_to_proto(wanted.kind),
            roles=[role_to_proto(role) for role in wanted.roles],
            actor_principal_id=me.subject,
        )
        await audit.record(
            tx,
            created,
            organization_id=wanted.organization_id,
            principal_id=wanted.principal_id,
            now_s=core.clock(),
            actor_principal_id=me.subject,
        )
    return PrincipalView(wanted, None), invitation


async def invite_member(
    core: AuthCore, *, member_id: str, email: str, display_name: str, roles: list[str]
) -> tuple[PrincipalView, Invitation]:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(member_id, "member_id", violations)
    domain.check_email(email, "email", violations)
    domain.check_display_name(display_name, "display_name", violations)
    domain.check_member_roles(roles, "roles", violations)
    domain.raise_if(violations)
    if domain.ROLE_OWNER in roles and domain.ROLE_OWNER not in me.roles:
        raise PermissionDenied("only owners may grant the owner role")
    wanted = _new_principal(
        me.organization_id,
        member_id,
        PRINCIPAL_KIND_MEMBER,
        email=domain.normalize_email(email),
        display_name=display_name,
        roles=tuple(dict.fromkeys(roles)),
        now_s=core.clock(),
    )
    return await _create_invited(core, wanted, "member_id")


async def create_customer(
    core: AuthCore, *, customer_id: str, email: str, display_name: str, external_reference: str
) -> tuple[PrincipalView, Invitation]:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(customer_id, "customer_id", violations)
    domain.check_email(email, "email", violations)
    domain.check_display_name(display_name, "display_name", violations)
    if len(external_reference) > limits.EXTERNAL_REFERENCE_LENGTH_MAX:
        violations.append(FieldViolation("external_reference", "too long"))
    domain.raise_if(violations)
    wanted = _new_principal(
        me.organization_id,
        customer_id,
        PRINCIPAL_KIND_CUSTOMER,
        email=domain.normalize_email(email),
        display_name=display_name,
        roles=(),
        now_s=core.clock(),
        external_reference=external_reference or None,
    )
    return await _create_invited(core, wanted, "customer_id")


async def accept_invitation(core: AuthCore, *, invitation_token: str, password: str) -> Principal:
    violations: list[FieldViolation] = []
    if invitation_token == "":
        violations.append(FieldViolation("invitation_token", "is required"))
    if password == "":
        violations.append(FieldViolation("password", "is required"))
    domain.raise_if(violations)
    now_s = core.clock()
    async with core.store.transaction() as tx:
        taken = await tx.take_invitation(sha256(invitation_token), now_s)
        if taken is None:
            raise domain.InvitationInvalid()
        organization = await tx.get_organization(taken[0])
        principal = await tx.get_principal(taken[0], taken[1], for_update=True)
        assert organization is not None
        assert principal is not None
        problems = password_problems(password, organization.policy.password_min_length)
        domain.raise_if(domain.password_violations(problems, "password"), password_field="password")  # noqa: S106
        if principal.status != Status.INVITED:
            raise domain.InvitationInvalid()
        await tx.set_password_hash(principal.principal_id, await core.hash_password(password))
        await tx.set_status(principal.principal_id, Status.ACTIVE)
        changed = events.PrincipalStatusChanged(
            principal_id=principal.principal_id,
            principal_kind=kind_to_proto(principal.kind),
            previous_status=status_to_proto(Status.INVITED),
            status=status_to_proto(Status.ACTIVE),
            actor_principal_id=principal.principal_id,
        )
        await audit.record(
            tx, changed, organization_id=principal.organization_id, principal_id=principal.principal_id, now_s=now_s
        )
    return principal


@dataclass(frozen=True, slots=True)
class CustomerSignUp:
    customer: PrincipalView
    tokens: IssuedTokens | None


async def sign_up_customer(
    core: AuthCore,
    *,
    customer_id: str,
    organization_slug: str,
    email: str,
    display_name: str,
    password: str,
    source: Source,
) -> CustomerSignUp:
    violations: list[FieldViolation] = []
    parse_uuid(customer_id, "customer_id", violations)
    domain.check_slug(organization_slug, "organization_slug", violations)
    domain.check_email(email, "email", violations)
    domain.check_display_name(display_name, "display_name", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        organization = await tx.get_organization_by_slug(organization_slug)
    if organization is None or organization.is_platform or not organization.policy.customer_self_sign_up:
        # An unknown slug answers like a closed one: sign-up does not reveal which organizations exist.
        raise domain.SignUpNotAllowed()
    problems = password_problems(password, organization.policy.password_min_length)
    domain.raise_if(domain.password_violations(problems, "password"), password_field="password")  # noqa: S106
    now_s = core.clock()
    wanted = _new_principal(
        organization.organization_id,
        customer_id,
        PRINCIPAL_KIND_CUSTOMER,
        email=domain.normalize_email(email),
        display_name=display_name,
        roles=(),
        now_s=now_s,
        status=Status.ACTIVE,
    )
    async with core.store.transaction() as tx:
        existing = await tx.get_principal(organization.organization_id, customer_id)
        if existing is not None:
            _check_replay(existing, wanted, "customer_id")
            return CustomerSignUp(await principal_view(core, existing), None)
    password_hash = await core.hash_password(password)
    customer = _replace_password(wanted, password_hash)
    async with core.store.transaction() as tx:
        if await tx.principal_exists(customer_id):
            raise IdempotencyKeyReused("customer_id", "organization_slug")
        await tx.insert_principal(customer)
        created = events.PrincipalCreated(principal_id=customer_id, principal_kind=kind_to_proto(customer.kind))
        await audit.record(
            tx,
            created,
            organization_id=organization.organization_id,
            principal_id=customer_id,
            now_s=now_s,
            source=source,
        )
        tokens = await core.open_session(
            tx,
            customer,
            amr=(domain.AMR_PASSWORD,),
            source=source,
            session_lifetime_s=organization.policy.session_max_lifetime_s,
            enrolment_only=organization.policy.mfa_required,
        )
    return CustomerSignUp(PrincipalView(customer, None), tokens)


def _replace_password(principal: Principal, password_hash: str) -> Principal:
    return replace(principal, password_hash=password_hash)


async def get_principal(core: AuthCore, *, principal_id: str, kind: str) -> PrincipalView:
    me = caller()
    field = f"{kind_name(kind)}_id"
    violations: list[FieldViolation] = []
    parse_uuid(principal_id, field, violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(me.organization_id, principal_id, kind=kind)
    if principal is None:
        raise domain.not_found(kind_name(kind))
    return await principal_view(core, principal)


async def list_principals(
    core: AuthCore,
    *,
    kind: str,
    page_size_requested: int,
    page_token: str,
    status: Status | None,
    role: str | None,
    email: str | None,
    external_reference: str | None,
) -> PrincipalPage:
    me = caller()
    size = page_size(page_size_requested)
    filters = {
        "kind": kind,
        "status": status.value if status else None,
        "role": role,
        "email": email,
        "external_reference": external_reference,
    }
    cursor = decode_page_token(page_token, filters)
    after = (str(cursor["email"]), str(cursor["id"])) if cursor is not None else None
    async with core.store.transaction() as tx:
        rows = await tx.list_principals(
            me.organization_id,
            kind,
            status=status,
            role=role,
            email=domain.normalize_email(email) if email else None,
            external_reference=external_reference,
            order_by_email=kind == PRINCIPAL_KIND_MEMBER,
            after=after,
            limit=size + 1,
        )
    page, next_token = next_page(
        rows, size, lambda last: {"email": last.email or "", "id": last.principal_id}, filters
    )
    return PrincipalPage(await principal_views(core, page), next_token)


async def update_member_roles(core: AuthCore, *, member_id: str, roles: list[str], request_id: str) -> PrincipalView:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(member_id, "member_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.check_member_roles(roles, "roles", violations)
    domain.raise_if(violations)
    new_roles = tuple(dict.fromkeys(roles))
    async with core.store.transaction() as tx:
        member = await tx.get_principal(me.organization_id, member_id, kind=PRINCIPAL_KIND_MEMBER, for_update=True)
        if member is None:
            raise domain.not_found("member")
        if await core.claim_request(tx, me.organization_id, request_id, "roles", member_id, ",".join(new_roles)):
            return await principal_view(core, member)
        granting_owner = domain.ROLE_OWNER in new_roles and domain.ROLE_OWNER not in member.roles
        if (granting_owner or domain.ROLE_OWNER in member.roles) and domain.ROLE_OWNER not in me.roles:
            raise PermissionDenied("only owners may grant or remove the owner role")
        domain.check_last_owner(member.roles, new_roles, await tx.count_active_owners(me.organization_id))
        await tx.set_roles(member_id, new_roles)
        changed = events.RolesChanged(
            member_id=member_id,
            previous_roles=[role_to_proto(role) for role in member.roles],
            roles=[role_to_proto(role) for role in new_roles],
            actor_principal_id=me.subject,
        )
        await audit.record(
            tx,
            changed,
            organization_id=me.organization_id,
            principal_id=member_id,
            now_s=core.clock(),
            actor_principal_id=me.subject,
        )
    return await principal_view(core, replace(member, roles=new_roles))
