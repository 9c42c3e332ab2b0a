"""Use case of reading the audit trail: the caller's organization only, newest first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.auth import audit, domain
from services.auth.core import AuthCore, caller
from services.auth.domain_records import AuditRecord
from services.auth.service import AuthTransaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, first_differing_field
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import Principal
from wallet.auth.v1 import auth_events_pb2 as events


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditRecord]
    next_page_token: str


async def list_audit_events(
    core: AuthCore,
    *,
    page_size_requested: int,
    page_token: str,
    principal_id: str,
    event_type: str | None,
    start_s: float | None,
    end_s: float | None,
    export_id: str = "",
) -> AuditPage:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(principal_id, "principal_id", violations, required=False)
    parse_uuid(export_id, "export_id", violations, required=False)
    if start_s is not None and end_s is not None and end_s <= start_s:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    domain.raise_if(violations)
    size = page_size(page_size_requested)
    filters = {"principal": principal_id, "type": event_type, "start": start_s, "end": end_s}
    if export_id:
        filters["export"] = export_id
    cursor = decode_page_token(page_token, filters)
    async with core.store.transaction() as tx:
        if export_id and cursor is None:
            await _audit_export_once(core, tx, me, export_id, filters)
        rows = await tx.list_audit(
            me.organization_id,
            principal_id=principal_id or None,
            event_type=event_type,
            start_s=start_s,
            end_s=end_s,
            before_id=str(cursor["id"]) if cursor is not None else None,
            limit=size + 1,
        )
    page, next_token = next_page(rows, size, lambda last: {"id": last.audit_event_id}, filters)
    return AuditPage(page, next_token)


async def _audit_export_once(
    core: AuthCore, tx: AuthTransaction, me: Principal, export_id: str, filters: Mapping[str, object]
) -> None:
    """A read marked as an export is audited once, on its first page (a retried first page replays); the same
    export id with other filters is ``IDEMPOTENCY_KEY_REUSED``."""
    wanted = {name: "" if value is None else str(value) for name, value in filters.items() if name != "export"}
    recorded = await tx.exported_audit_filters(me.organization_id, export_id)
    if recorded is not None:
        differing = first_differing_field((name, value, recorded.get(name, "")) for name, value in wanted.items())
        if differing is not None:
            raise IdempotencyKeyReused("export_id", differing)
        return
    payload = events.AuditEventsExported(export_id=export_id, actor_principal_id=me.subject, filters=wanted)
    await audit.record(
        tx,
        payload,
        organization_id=me.organization_id,
        principal_id=me.subject,
        now_s=core.clock(),
        actor_principal_id=me.subject,
    )
