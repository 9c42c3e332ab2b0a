"""Use case ``ListComplaintEvents``: the tenant's complaint steps (who did what to which complaint, when, under which
trace) for a period, for auditors — the complaint part of walletctl's audit-trail export.

The permission (``risk.complaint_events.read``) is held by auditors and owners only; the steps carry no free text.
A read with an ``export_id`` is audited once, on its first page (``complaint_events_exported`` on subject
``exports/<id>``, like ``ListAssessments``), and its page tokens are bound to it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from services.kit.errors import FieldViolation, IdempotencyKeyReused, first_differing_field, invalid
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import Principal
from services.risk.domain_complaints import ComplaintEvent
from services.risk.service import Page, to_datetime


class ComplaintEventStore(Protocol):
    async def events_page(
        self,
        organization_id: str,
        *,
        complaint_id: uuid.UUID | None,
        start: datetime | None,
        end: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ComplaintEvent]: ...

    async def audit_events_export(
        self, organization_id: str, export_id: uuid.UUID, actor: str, detail: dict[str, str]
    ) -> dict[str, str] | None: ...


def _cursor(event: ComplaintEvent) -> dict[str, Any]:
    # The instant as ISO text: a float would round microseconds and skip or repeat a step at a page boundary.
    return {"t": event.occurred_at.isoformat(), "n": event.event_number}


def _before(cursor: dict[str, Any] | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    moment = datetime.fromisoformat(str(cursor["t"]))
    assert moment.tzinfo is not None
    return moment.astimezone(UTC), int(cursor["n"])


class ComplaintEvents:
    def __init__(self, store: ComplaintEventStore) -> None:
        self._store = store

    async def list_events(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        complaint_id: str,
        start_s: float | None,
        end_s: float | None,
        export_id: str,
    ) -> Page:
        violations: list[FieldViolation] = []
        complaint = parse_uuid(complaint_id, "complaint_id", violations, required=False)
        export = parse_uuid(export_id, "export_id", violations, required=False)
        if start_s is not None and end_s is not None and end_s <= start_s:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        if violations:
            raise invalid(violations)
        size = page_size(page_size_requested)
        filters: dict[str, Any] = {"complaint_id": complaint_id, "start": start_s, "end": end_s}
        if export is not None:
            filters["export"] = str(export)
        cursor = decode_page_token(page_token, filters)
        if export is not None and cursor is None:
            await self._audit_export(principal, export, filters)
        events = await self._store.events_page(
            principal.organization_id,
            complaint_id=complaint,
            start=to_datetime(start_s),
            end=to_datetime(end_s),
            before=_before(cursor),
            limit=size + 1,
        )
        page, token = next_page(events, size, _cursor, filters)
        return Page(page, token)

    async def _audit_export(self, principal: Principal, export: uuid.UUID, filters: dict[str, Any]) -> None:
        """Audited once, on the first page; the same export id with other filters is ``IDEMPOTENCY_KEY_REUSED``."""
        detail = {name: "" if value is None else str(value) for name, value in filters.items() if name != "export"}
        recorded = await self._store.audit_events_export(principal.organization_id, export, principal.subject, detail)
        if recorded is None:
            return
        differing = first_differing_field((name, detail[name], recorded.get(name)) for name in detail)
        if differing is not None:
            raise IdempotencyKeyReused("export_id", differing)
