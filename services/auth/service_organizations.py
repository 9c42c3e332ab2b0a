"""Use cases of organizations: sign-up (organization + owner + first session) and the authentication policy."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth import audit, domain
from services.auth.core import AuthCore, IssuedTokens, caller
from services.auth.domain import Organization, OrganizationPolicy, Principal, Status
from services.auth.domain_records import Source
from services.auth.passwords import password_problems
from services.kit.errors import Aborted, FieldViolation, IdempotencyKeyReused
from services.kit.ids import parse_uuid, uuid7
from services.kit.tokens import PRINCIPAL_KIND_MEMBER
from wallet.auth.v1 import auth_events_pb2 as events
from wallet.auth.v1 import auth_identity_pb2


@dataclass(frozen=True, slots=True)
class SignUpResult:
    organization: Organization
    owner_member_id: str
    tokens: IssuedTokens | None


def _validate_sign_up(
    organization_id: str, slug: str, display_name: str, email: str, owner_name: str, password: str
) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(organization_id, "organization_id", violations)
    domain.check_slug(slug, "slug", violations)
    domain.check_display_name(display_name, "display_name", violations)
    domain.check_email(email, "owner_email", violations)
    domain.check_display_name(owner_name, "owner_display_name", violations)
    violations += domain.password_violations(
        password_problems(password, domain.OrganizationPolicy().password_min_length), "owner_password"
    )
    domain.raise_if(violations, password_field="owner_password")  # noqa: S106


async def sign_up_organization(
    core: AuthCore,
    *,
    organization_id: str,
    slug: str,
    display_name: str,
    owner_email: str,
    owner_display_name: str,
    owner_password: str,
    source: Source,
) -> SignUpResult:
    _validate_sign_up(organization_id, slug, display_name, owner_email, owner_display_name, owner_password)
    email = domain.normalize_email(owner_email)
    async with core.store.transaction() as tx:
        existing = await tx.get_organization(organization_id)
    if existing is not None:
        return await _replay_sign_up(core, existing, slug, display_name, email)
    password_hash = await core.hash_password(owner_password)
    now_s = core.clock()
    owner = Principal(
        organization_id=organization_id,
        principal_id=str(uuid7(int(now_s * 1000))),
        kind=PRINCIPAL_KIND_MEMBER,
        email=email,
        display_name=owner_display_name.strip(),
        external_reference=None,
        roles=(domain.ROLE_OWNER,),
        scopes=(),
        status=Status.ACTIVE,
        password_hash=password_hash,
        totp_enrolled=False,
        totp_last_step=0,
        created_at=now_s,
        last_login_at=None,
    )
    async with core.store.transaction() as tx:
        await tx.insert_organization(organization_id, slug, display_name.strip(), now_s)
        await tx.insert_principal(owner)
        organization = await tx.get_organization(organization_id)
        assert organization is not None
        created = events.PrincipalCreated(
            principal_id=owner.principal_id,
            principal_kind=auth_identity_pb2.PRINCIPAL_KIND_MEMBER,
            roles=[auth_identity_pb2.ROLE_OWNER],
        )
        await audit.record(
            tx, created, organization_id=organization_id, principal_id=owner.principal_id, now_s=now_s, source=source
        )
        tokens = await core.open_session(
            tx,
            owner,
            amr=(domain.AMR_PASSWORD,),
            source=source,
            session_lifetime_s=organization.policy.session_max_lifetime_s,
            enrolment_only=False,
        )
    return SignUpResult(organization, owner.principal_id, tokens)


async def _replay_sign_up(
    core: AuthCore, existing: Organization, slug: str, display_name: str, email: str
) -> SignUpResult:
    if existing.slug != slug:
        raise IdempotencyKeyReused("organization_id", "slug")
    if existing.display_name != display_name.strip():
        raise IdempotencyKeyReused("organization_id", "display_name")
    async with core.store.transaction() as tx:
        owner = await tx.find_login(existing.organization_id, email)
    if owner is None:
        raise IdempotencyKeyReused("organization_id", "owner_email")
    if owner.kind != PRINCIPAL_KIND_MEMBER:
        raise Aborted("the owner changed since sign-up; sign in instead")
    return SignUpResult(existing, owner.principal_id, None)


async def get_organization(core: AuthCore) -> Organization:
    me = caller()
    async with core.store.transaction() as tx:
        organization = await tx.get_organization(me.organization_id)
    if organization is None:
        raise domain.not_found("organization")
    return organization


async def get_organization_policy(core: AuthCore) -> OrganizationPolicy:
    return (await get_organization(core)).policy


async def update_organization_policy(
    core: AuthCore, *, wanted: OrganizationPolicy, mask: list[str], request_id: str
) -> OrganizationPolicy:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    now_s = core.clock()
    async with core.store.transaction() as tx:
        organization = await tx.get_organization(me.organization_id)
        if organization is None:
            raise domain.not_found("organization")
        updated = domain.apply_policy_update(organization.policy, wanted, mask, now_s)
        wanted_values = repr(sorted((path, getattr(updated, domain.policy_attribute(path))) for path in mask))
        replay = await core.claim_request(
            tx, me.organization_id, request_id, "update_policy", me.organization_id, wanted_values
        )
        if replay:
            return organization.policy
        await tx.update_policy(me.organization_id, updated)
        changed = events.OrganizationPolicyChanged(changed_fields=sorted(mask), actor_principal_id=me.subject)
        await audit.record(
            tx,
            changed,
            organization_id=me.organization_id,
            principal_id="",
            now_s=now_s,
            actor_principal_id=me.subject,
        )
    return updated
