"""Use case of reading the audit trail: the caller's organization only, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth import domain
from services.auth.core import AuthCore, caller
from services.auth.domain_records import AuditRecord
from services.kit.errors import FieldViolation
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size


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
) -> AuditPage:
    me = caller()
    violations: list[FieldViolation] = []
    parse_uuid(principal_id, "principal_id", violations, required=False)
    if start_s is not None and end_s is not None and end_s <= start_s:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    domain.raise_if(violations)
    size = page_size(page_size_requested)
    filters = {"principal": principal_id, "type": event_type, "start": start_s, "end": end_s}
    cursor = decode_page_token(page_token, filters)
    async with core.store.transaction() as tx:
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
