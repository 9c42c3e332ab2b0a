"""Use cases that change whether a member or customer may sign in: disable (revokes every session), enable, and
an admin's unlock of a brute-force lockout. All audited, all idempotent by ``request_id``."""

from __future__ import annotations

from dataclasses import replace

from services.auth import audit, domain
from services.auth.core import AuthCore, caller
from services.auth.domain import Status
from services.auth.proto_enums import kind_to_proto, status_to_proto
from services.auth.service_principals import PrincipalView, kind_name, principal_view
from services.auth.service_sessions import revoke_sessions
from services.kit.errors import FailedPrecondition, FieldViolation, PermissionDenied
from services.kit.ids import parse_uuid
from services.kit.tokens import PRINCIPAL_KIND_MEMBER
from wallet.auth.v1 import auth_events_pb2 as events

REVOKE_CAUSE_DISABLED = "principal_disabled"


def _validate(principal_id: str, kind: str, request_id: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(principal_id, f"{kind_name(kind)}_id", violations)
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)


async def set_principal_status(
    core: AuthCore, *, principal_id: str, kind: str, status: Status, request_id: str
) -> PrincipalView:
    me = caller()
    _validate(principal_id, kind, request_id)
    now_s = core.clock()
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(me.organization_id, principal_id, kind=kind, for_update=True)
        if principal is None:
            raise domain.not_found(kind_name(kind))
        if await core.claim_request(tx, me.organization_id, request_id, f"status:{status.value}", principal_id):
            return await principal_view(core, principal)
        if principal.status == status:
            return await principal_view(core, principal)
        if (
            kind == PRINCIPAL_KIND_MEMBER
            and domain.ROLE_OWNER in principal.roles
            and domain.ROLE_OWNER not in me.roles
        ):
            raise PermissionDenied("only owners may disable or enable an owner")
        if status == Status.DISABLED:
            if kind == PRINCIPAL_KIND_MEMBER:
                domain.check_last_owner(principal.roles, (), await tx.count_active_owners(me.organization_id))
            await revoke_sessions(core, tx, principal_id, me.organization_id, me.subject, REVOKE_CAUSE_DISABLED)
        elif principal.status == Status.INVITED:
            raise FailedPrecondition("an invited principal becomes active by accepting its invitation")
        await tx.set_status(principal_id, status)
        changed = events.PrincipalStatusChanged(
            principal_id=principal_id,
            principal_kind=kind_to_proto(kind),
            previous_status=status_to_proto(principal.status),
            status=status_to_proto(status),
            actor_principal_id=me.subject,
        )
        await audit.record(
            tx,
            changed,
            organization_id=me.organization_id,
            principal_id=principal_id,
            now_s=now_s,
            actor_principal_id=me.subject,
        )
    return await principal_view(core, replace(principal, status=status))


async def unlock_principal(core: AuthCore, *, principal_id: str, kind: str, request_id: str) -> PrincipalView:
    me = caller()
    _validate(principal_id, kind, request_id)
    async with core.store.transaction() as tx:
        principal = await tx.get_principal(me.organization_id, principal_id, kind=kind)
        if principal is None:
            raise domain.not_found(kind_name(kind))
        replay = await core.claim_request(tx, me.organization_id, request_id, "unlock", principal_id)
    if not replay:
        await core.guard.clear(core.guard.keys(principal.organization_id, principal.email or "", "").account)
        async with core.store.transaction() as tx:
            unlocked = events.PrincipalUnlocked(principal_id=principal_id, actor_principal_id=me.subject)
            await audit.record(
                tx,
                unlocked,
                organization_id=me.organization_id,
                principal_id=principal_id,
                now_s=core.clock(),
                actor_principal_id=me.subject,
            )
    return await principal_view(core, principal)
