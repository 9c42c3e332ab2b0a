"""Use cases of token keys and token checks: JWKS, rotation, listing, and introspection (which, unlike local
verification, honours revocation: revoked sessions and disabled principals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.auth import audit, domain
from services.auth.core import AuthCore, caller
from services.auth.domain import Status
from services.auth.domain_records import SigningKeyRecord
from services.kit.errors import FieldViolation, Unauthenticated
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import PRINCIPAL_KIND_SERVICE, TokenVerifier
from services.kit.tokens import Principal as TokenPrincipal
from wallet.auth.v1 import auth_events_pb2 as events


async def get_jwks(core: AuthCore) -> Sequence[dict[str, Any]]:
    return await core.key_ring.published()


async def rotate_signing_keys(core: AuthCore, *, request_id: str) -> tuple[SigningKeyRecord, SigningKeyRecord]:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(request_id, "request_id", violations)
    domain.raise_if(violations)
    async with core.store.transaction() as tx:
        new, previous, rotated_now = await core.key_ring.rotate(tx, request_id)
        if rotated_now:
            rotated = events.SigningKeyRotated(
                key_id=new.key_id, previous_key_id=previous.key_id, actor_principal_id=me.subject
            )
            await audit.record(
                tx,
                rotated,
                organization_id=me.organization_id,
                principal_id="",
                now_s=core.clock(),
                actor_principal_id=me.subject,
            )
    if rotated_now and core.keys_changed is not None:
        await core.keys_changed()
    return new, previous


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[SigningKeyRecord]
    next_page_token: str


async def list_signing_keys(core: AuthCore, *, page_size_requested: int, page_token: str) -> KeyPage:
    size = page_size(page_size_requested)
    cursor = decode_page_token(page_token, {})
    after = (float(cursor["t"]), str(cursor["id"])) if cursor is not None else None
    async with core.store.transaction() as tx:
        rows = await tx.list_keys(after, size + 1)
    page, next_token = next_page(rows, size, lambda last: {"t": last.created_at, "id": last.key_id}, {})
    return KeyPage(page, next_token)


async def introspect_token(core: AuthCore, verifier: TokenVerifier, *, token: str) -> TokenPrincipal | None:
    """The token's claims when it is valid and nothing it stands for was revoked; None otherwise."""
    if token == "":
        domain.raise_if([FieldViolation("token", "is required")])
    try:
        claims = await verifier.verify(token)
    except Unauthenticated:
        return None
    now_s = core.clock()
    async with core.store.transaction() as tx:
        if claims.kind == PRINCIPAL_KIND_SERVICE:
            # Platform service accounts get tokens for other tenants: look them up by id alone.
            found = await tx.get_service_account(claims.subject)
            principal = found[0] if found is not None else None
        else:
            principal = await tx.get_principal(claims.organization_id, claims.subject)
        if principal is None or principal.status != Status.ACTIVE:
            return None
        if claims.session_id is not None:
            session = await tx.get_session(claims.session_id)
            if session is None or session.revoked_at is not None or session.expires_at <= now_s:
                return None
    return claims
