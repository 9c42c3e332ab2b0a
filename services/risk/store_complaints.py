"""SQL for complaints: the complaint rows, their notes, the audit of every step, the reference-number sequence and
the customer notifications waiting for the contacts vault.

Each public method is one transaction. Instants come from the service's clock (passed in), never from ``now()``.
The breach rules of ``domain_complaints.sla_view`` are stated once more here in SQL (``_ACKNOWLEDGE_BREACHED``,
``_RESOLVE_BREACHED``) for filtering and counting; the integration tests check both agree.
"""

# Only this module's constant breach and age conditions are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.kit.db import transaction
from services.kit.errors import FailedPrecondition, IdempotencyKeyReused
from services.risk import limits
from services.risk.domain_complaints import (
    AGE_BUCKET_BOUNDS_DAYS,
    Complaint,
    ComplaintCategory,
    ComplaintEvent,
    ComplaintNote,
    ComplaintNotFound,
    ComplaintOutcome,
    ComplaintReport,
    ComplaintStatus,
    NoteVisibility,
    Refund,
    ReportRow,
    Step,
    reference_number,
    year_of,
)
from services.risk.store import PoolSource, audit_export_once, to_datetime, to_seconds

# Risk audit action of a complaint-steps listing read as a named export.
COMPLAINT_EVENTS_EXPORTED = "complaint_events_exported"

# `$now` is the parameter named in each query that uses these.
_END = "coalesce(resolved_at, {now})"
_ACKNOWLEDGE_BREACHED = "(coalesce(acknowledged_at, " + _END + ") > acknowledge_due_at)"
_RESOLVE_BREACHED = (
    "(CASE WHEN awaiting_since IS NOT NULL THEN awaiting_since > resolve_due_at ELSE "
    + _END
    + " > resolve_due_at END)"
)
_OPEN = "(resolved_at IS NULL)"


def _breached(now: str) -> str:
    return f"({_ACKNOWLEDGE_BREACHED.format(now=now)} OR {_RESOLVE_BREACHED.format(now=now)})"


class NoteLimitReached(FailedPrecondition):
    pass


@dataclass(frozen=True, slots=True)
class PendingNotification:
    organization_id: str
    notification_id: str
    complaint_id: str
    customer_id: str
    reference_number: str
    status_name: str
    message: str


def _note(row: asyncpg.Record) -> ComplaintNote:
    return ComplaintNote(
        complaint_note_id=str(row["complaint_note_id"]),
        author_principal_id=row["author_principal_id"],
        from_customer=row["from_customer"],
        visibility=NoteVisibility(row["visibility"]),
        text=row["text"],
        created_at_s=row["created_at"].timestamp(),
    )


def _complaint(row: asyncpg.Record, notes: tuple[ComplaintNote, ...] = ()) -> Complaint:
    refund = None
    if row["refund_amount_minor"] is not None:
        refund = Refund(row["refund_amount_minor"], row["refund_currency"])
    return Complaint(
        complaint_id=str(row["complaint_id"]),
        reference_number=row["reference_number"],
        customer_id=row["customer_id"],
        category=ComplaintCategory(row["category"]),
        status=ComplaintStatus(row["status"]),
        transfer_id=row["transfer_id"],
        card_id=row["card_id"],
        description=row["description"],
        attachment_references=tuple(row["attachment_references"]),
        opened_by_principal_id=row["opened_by_principal_id"],
        opened_at_s=row["opened_at"].timestamp(),
        updated_at_s=row["updated_at"].timestamp(),
        acknowledge_due_at_s=row["acknowledge_due_at"].timestamp(),
        resolve_due_at_s=row["resolve_due_at"].timestamp(),
        escalation_level=row["escalation_level"],
        acknowledged_at_s=to_seconds(row["acknowledged_at"]),
        acknowledge_request_id=_text(row["acknowledge_request_id"]),
        awaiting_since_s=to_seconds(row["awaiting_since"]),
        resolve_request_id=_text(row["resolve_request_id"]),
        outcome=None if row["resolution_outcome"] is None else ComplaintOutcome(row["resolution_outcome"]),
        resolution_reason=row["resolution_reason"] or "",
        refund=refund,
        refund_transfer_id=row["refund_transfer_id"] or "",
        resolved_by_principal_id=row["resolved_by_principal_id"] or "",
        resolved_at_s=to_seconds(row["resolved_at"]),
        notes=notes,
    )


def _text(value: uuid.UUID | None) -> str:
    return "" if value is None else str(value)


def _uuid_or_none(text: str) -> uuid.UUID | None:
    return uuid.UUID(text) if text else None


async def _event(
    connection: asyncpg.Connection,
    org: uuid.UUID,
    complaint_id: uuid.UUID,
    action: str,
    actor: str,
    trace_id: str,
    now_s: float,
) -> None:
    await connection.execute(
        "INSERT INTO complaint_events (organization_id, complaint_id, action, actor_principal_id, trace_id,"
        " occurred_at) VALUES ($1, $2, $3, $4, $5, $6)",
        org,
        complaint_id,
        action,
        actor,
        trace_id,
        to_datetime(now_s),
    )


async def _notes(
    connection: asyncpg.Connection | asyncpg.Pool, org: uuid.UUID, complaint_id: uuid.UUID
) -> tuple[ComplaintNote, ...]:
    rows = await connection.fetch(
        "SELECT * FROM complaint_notes WHERE organization_id = $1 AND complaint_id = $2"
        " ORDER BY created_at, complaint_note_id",
        org,
        complaint_id,
    )
    return tuple(_note(row) for row in rows)


class _TwinOpened(Exception):
    """A concurrent OpenComplaint with the same id committed first: roll back the sequence number taken."""


@dataclass(frozen=True, slots=True)
class Audit:
    """Who did a step, and under which trace."""

    actor: str
    trace_id: str
    now_s: float


class ComplaintStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def find(self, organization_id: str, complaint_id: str) -> Complaint | None:
        org = uuid.UUID(organization_id)
        complaint_uuid = uuid.UUID(complaint_id)
        row = await self._pool.fetchrow(
            "SELECT * FROM complaints WHERE organization_id = $1 AND complaint_id = $2", org, complaint_uuid
        )
        if row is None:
            return None
        return _complaint(row, await _notes(self._pool, org, complaint_uuid))

    async def get(self, organization_id: str, complaint_id: str) -> Complaint:
        complaint = await self.find(organization_id, complaint_id)
        if complaint is None:
            raise ComplaintNotFound("complaint not found")
        return complaint

    async def open(
        self, organization_id: str, build: Callable[[str], Complaint], audit: Audit
    ) -> tuple[Complaint, bool]:
        """Inserts the complaint ``build`` makes from the next reference number of the tenant's year; (the stored
        complaint, False) when one with this id exists already (a replay, or a concurrent twin)."""
        org = uuid.UUID(organization_id)
        probe = build("CMP-0000-000000")
        complaint_uuid = uuid.UUID(probe.complaint_id)
        try:
            async with transaction(self._pool) as connection:
                exists = await connection.fetchval(
                    "SELECT 1 FROM complaints WHERE organization_id = $1 AND complaint_id = $2", org, complaint_uuid
                )
                if exists is not None:
                    raise _TwinOpened
                year = year_of(audit.now_s)
                number = await connection.fetchval(
                    "INSERT INTO complaint_sequences (organization_id, year, last_number) VALUES ($1, $2, 1)"
                    " ON CONFLICT (organization_id, year) DO UPDATE"
                    " SET last_number = complaint_sequences.last_number + 1 RETURNING last_number",
                    org,
                    year,
                )
                complaint = build(reference_number(year, number))
                inserted = await connection.fetchval(
                    "INSERT INTO complaints (organization_id, complaint_id, reference_number, customer_id, category,"
                    " status, transfer_id, card_id, description, attachment_references, opened_by_principal_id,"
                    " opened_at, updated_at, acknowledge_due_at, resolve_due_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)"
                    " ON CONFLICT (organization_id, complaint_id) DO NOTHING RETURNING 1",
                    org,
                    complaint_uuid,
                    complaint.reference_number,
                    complaint.customer_id,
                    complaint.category.value,
                    complaint.status.value,
                    complaint.transfer_id,
                    complaint.card_id,
                    complaint.description,
                    list(complaint.attachment_references),
                    complaint.opened_by_principal_id,
                    to_datetime(complaint.opened_at_s),
                    to_datetime(complaint.acknowledge_due_at_s),
                    to_datetime(complaint.resolve_due_at_s),
                )
                if inserted is None:
                    raise _TwinOpened
                await _event(connection, org, complaint_uuid, "opened", audit.actor, audit.trace_id, audit.now_s)
        except _TwinOpened:
            return await self.get(organization_id, probe.complaint_id), False
        return complaint, True

    async def apply(
        self, organization_id: str, complaint_id: str, change: Callable[[Complaint], Step | None], audit: Audit
    ) -> tuple[Complaint, Step | None]:
        """Locks the complaint, asks ``change`` for the step (None: nothing to do, e.g. a replay) and writes it with
        its audit event, note and notification in the same transaction. Returns the complaint as it now is."""
        org = uuid.UUID(organization_id)
        complaint_uuid = uuid.UUID(complaint_id)
        async with transaction(self._pool) as connection:
            row = await connection.fetchrow(
                "SELECT * FROM complaints WHERE organization_id = $1 AND complaint_id = $2 FOR UPDATE",
                org,
                complaint_uuid,
            )
            if row is None:
                raise ComplaintNotFound("complaint not found")
            current = _complaint(row, await _notes(connection, org, complaint_uuid))
            step = change(current)
            if step is None:
                return current, None
            await self._write(connection, org, step, audit)
        return step.complaint, step

    async def _write(self, connection: asyncpg.Connection, org: uuid.UUID, step: Step, audit: Audit) -> None:
        complaint = step.complaint
        complaint_uuid = uuid.UUID(complaint.complaint_id)
        refund = complaint.refund
        await connection.execute(
            "UPDATE complaints SET status = $3, escalation_level = $4, updated_at = $5, acknowledged_at = $6,"
            " acknowledge_request_id = $7, resolve_due_at = $8, awaiting_since = $9, resolve_request_id = $10,"
            " resolution_outcome = $11, resolution_reason = $12, refund_amount_minor = $13, refund_currency = $14,"
            " refund_transfer_id = $15, resolved_by_principal_id = $16, resolved_at = $17"
            " WHERE organization_id = $1 AND complaint_id = $2",
            org,
            complaint_uuid,
            complaint.status.value,
            complaint.escalation_level,
            to_datetime(complaint.updated_at_s),
            to_datetime(complaint.acknowledged_at_s),
            _uuid_or_none(complaint.acknowledge_request_id),
            to_datetime(complaint.resolve_due_at_s),
            to_datetime(complaint.awaiting_since_s),
            _uuid_or_none(complaint.resolve_request_id),
            None if complaint.outcome is None else complaint.outcome.value,
            complaint.resolution_reason or None,
            None if refund is None else refund.amount_minor,
            None if refund is None else refund.currency,
            complaint.refund_transfer_id or None,
            complaint.resolved_by_principal_id or None,
            to_datetime(complaint.resolved_at_s),
        )
        note = step.note
        if note is not None:
            if len(complaint.notes) > limits.COMPLAINT_NOTES_MAX:
                raise NoteLimitReached(f"a complaint holds at most {limits.COMPLAINT_NOTES_MAX} notes")
            inserted = await connection.fetchval(
                "INSERT INTO complaint_notes (organization_id, complaint_note_id, complaint_id, author_principal_id,"
                " from_customer, visibility, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (organization_id, complaint_note_id) DO NOTHING RETURNING 1",
                org,
                uuid.UUID(note.complaint_note_id),
                complaint_uuid,
                note.author_principal_id,
                note.from_customer,
                note.visibility.value,
                note.text,
                to_datetime(note.created_at_s),
            )
            if inserted is None:  # the id is taken by a note on another complaint
                raise IdempotencyKeyReused(step.note_id_field, "complaint_id")
        notice = step.notice
        if notice is not None:
            await connection.execute(
                "INSERT INTO complaint_notifications (organization_id, notification_id, complaint_id, customer_id,"
                " reference_number, status_name, message, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (organization_id, notification_id) DO NOTHING",
                org,
                uuid.UUID(notice.notification_id),
                complaint_uuid,
                complaint.customer_id,
                complaint.reference_number,
                complaint.status.name,
                notice.message,
                to_datetime(audit.now_s),
            )
        await _event(connection, org, complaint_uuid, step.action, audit.actor, audit.trace_id, audit.now_s)

    async def record_event(self, organization_id: str, complaint_id: str, action: str, audit: Audit) -> None:
        async with transaction(self._pool) as connection:
            await _event(
                connection,
                uuid.UUID(organization_id),
                uuid.UUID(complaint_id),
                action,
                audit.actor,
                audit.trace_id,
                audit.now_s,
            )

    async def history(self, organization_id: str, complaint_id: str) -> list[tuple[str, str, str, float]]:
        """(action, actor, trace id, when) of every step, oldest first."""
        rows = await self._pool.fetch(
            "SELECT action, actor_principal_id, trace_id, occurred_at FROM complaint_events"
            " WHERE organization_id = $1 AND complaint_id = $2 ORDER BY event_number",
            uuid.UUID(organization_id),
            uuid.UUID(complaint_id),
        )
        return [(r["action"], r["actor_principal_id"], r["trace_id"], r["occurred_at"].timestamp()) for r in rows]

    async def events_page(
        self,
        organization_id: str,
        *,
        complaint_id: uuid.UUID | None,
        start: datetime | None,
        end: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ComplaintEvent]:
        """The tenant's complaint steps, newest first (keyset ``(occurred_at, event_number)``, strictly before
        ``before``)."""
        rows = await self._pool.fetch(
            "SELECT e.complaint_id, e.event_number, e.action, e.actor_principal_id, e.trace_id, e.occurred_at,"
            " c.category FROM complaint_events e JOIN complaints c USING (organization_id, complaint_id)"
            " WHERE e.organization_id = $1 AND ($2::uuid IS NULL OR e.complaint_id = $2)"
            " AND ($3::timestamptz IS NULL OR e.occurred_at >= $3) AND ($4::timestamptz IS NULL OR e.occurred_at < $4)"
            " AND ($5::timestamptz IS NULL OR (e.occurred_at, e.event_number) < ($5, $6))"
            " ORDER BY e.occurred_at DESC, e.event_number DESC LIMIT $7",
            uuid.UUID(organization_id),
            complaint_id,
            start,
            end,
            None if before is None else before[0],
            None if before is None else before[1],
            limit,
        )
        return [
            ComplaintEvent(
                complaint_id=str(row["complaint_id"]),
                event_number=row["event_number"],
                action=row["action"],
                actor_principal_id=row["actor_principal_id"],
                trace_id=row["trace_id"],
                occurred_at=row["occurred_at"],
                category=ComplaintCategory(row["category"]),
            )
            for row in rows
        ]

    async def audit_events_export(
        self, organization_id: str, export_id: uuid.UUID, actor: str, detail: dict[str, str]
    ) -> dict[str, str] | None:
        """Audits an export of the complaint steps once: None when this call recorded it, else the first detail."""
        return await audit_export_once(
            self._pool, organization_id, COMPLAINT_EVENTS_EXPORTED, export_id, actor, detail
        )

    async def page(
        self,
        organization_id: str,
        *,
        status: ComplaintStatus | None,
        category: ComplaintCategory | None,
        customer_id: str,
        breached_only: bool,
        now_s: float,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Complaint]:
        rows = await self._pool.fetch(
            "SELECT * FROM complaints WHERE organization_id = $1 AND ($2::smallint IS NULL OR status = $2)"
            " AND ($3::smallint IS NULL OR category = $3) AND ($4 = '' OR customer_id = $4)"
            f" AND (NOT $5 OR {_breached('$6')})"
            " AND ($7::timestamptz IS NULL OR (opened_at, complaint_id) > ($7, $8))"
            " ORDER BY opened_at, complaint_id LIMIT $9",
            uuid.UUID(organization_id),
            None if status is None else status.value,
            None if category is None else category.value,
            customer_id,
            breached_only,
            to_datetime(now_s),
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_complaint(row) for row in rows]

    async def report(self, organization_id: str, start_s: float, end_s: float, now_s: float) -> ComplaintReport:
        org = uuid.UUID(organization_id)
        ages = ", ".join(f"count(*) FILTER (WHERE {_OPEN} AND {condition})" for condition in _age_conditions())
        async with transaction(self._pool) as connection:
            rows = await connection.fetch(
                "SELECT category, status, count(*) AS total,"
                f" count(*) FILTER (WHERE {_ACKNOWLEDGE_BREACHED.format(now='$4')}) AS acknowledge_breached,"
                f" count(*) FILTER (WHERE {_RESOLVE_BREACHED.format(now='$4')}) AS resolve_breached,"
                f" {ages}"
                " FROM complaints WHERE organization_id = $1 AND opened_at >= $2 AND opened_at < $3"
                " GROUP BY category, status ORDER BY category, status",
                org,
                to_datetime(start_s),
                to_datetime(end_s),
                to_datetime(now_s),
            )
            totals = await connection.fetchrow(
                f"SELECT count(*) AS open_total, count(*) FILTER (WHERE {_breached('$2')}) AS breached_total"
                f" FROM complaints WHERE organization_id = $1 AND {_OPEN}",
                org,
                to_datetime(now_s),
            )
        age_columns = len(AGE_BUCKET_BOUNDS_DAYS) + 1
        report_rows = tuple(
            ReportRow(
                category=ComplaintCategory(row["category"]),
                status=ComplaintStatus(row["status"]),
                count=row["total"],
                acknowledge_breached=row["acknowledge_breached"],
                resolve_breached=row["resolve_breached"],
                open_by_age=tuple(row[5 + index] for index in range(age_columns)),
            )
            for row in rows
        )
        assert totals is not None
        return ComplaintReport(report_rows, totals["open_total"], totals["breached_total"], now_s)

    async def open_and_breached_by_category(self, now_s: float) -> dict[ComplaintCategory, tuple[int, int]]:
        """Across every tenant (for the Prometheus gauges): open and breached complaints per category."""
        rows = await self._pool.fetch(
            f"SELECT category, count(*) AS open, count(*) FILTER (WHERE {_breached('$1')}) AS breached"
            f" FROM complaints WHERE {_OPEN} GROUP BY category",
            to_datetime(now_s),
        )
        counts = {category: (0, 0) for category in ComplaintCategory}
        for row in rows:
            counts[ComplaintCategory(row["category"])] = (row["open"], row["breached"])
        return counts

    async def pending_notifications(self, limit: int) -> list[PendingNotification]:
        rows = await self._pool.fetch(
            "SELECT * FROM complaint_notifications WHERE sent_at IS NULL AND attempts < $1"
            " ORDER BY created_at LIMIT $2",
            limits.COMPLAINT_NOTIFICATION_ATTEMPTS_MAX,
            limit,
        )
        return [
            PendingNotification(
                organization_id=str(row["organization_id"]),
                notification_id=str(row["notification_id"]),
                complaint_id=str(row["complaint_id"]),
                customer_id=row["customer_id"],
                reference_number=row["reference_number"],
                status_name=row["status_name"],
                message=row["message"],
            )
            for row in rows
        ]

    async def notification(self, organization_id: str, notification_id: str) -> PendingNotification | None:
        pending = await self._pool.fetchrow(
            "SELECT * FROM complaint_notifications WHERE organization_id = $1 AND notification_id = $2"
            " AND sent_at IS NULL",
            uuid.UUID(organization_id),
            uuid.UUID(notification_id),
        )
        if pending is None:
            return None
        return PendingNotification(
            organization_id=organization_id,
            notification_id=notification_id,
            complaint_id=str(pending["complaint_id"]),
            customer_id=pending["customer_id"],
            reference_number=pending["reference_number"],
            status_name=pending["status_name"],
            message=pending["message"],
        )

    async def mark_notification(self, pending: PendingNotification, *, sent: bool, audit: Audit) -> None:
        org = uuid.UUID(pending.organization_id)
        async with transaction(self._pool) as connection:
            updated = await connection.fetchval(
                "UPDATE complaint_notifications SET attempts = attempts + 1,"
                " sent_at = CASE WHEN $3 THEN $4::timestamptz ELSE NULL END"
                " WHERE organization_id = $1 AND notification_id = $2 AND sent_at IS NULL RETURNING 1",
                org,
                uuid.UUID(pending.notification_id),
                sent,
                to_datetime(audit.now_s),
            )
            if updated is not None and sent:
                await _event(
                    connection,
                    org,
                    uuid.UUID(pending.complaint_id),
                    "customer_notified",
                    audit.actor,
                    audit.trace_id,
                    audit.now_s,
                )


def _age_conditions() -> list[str]:
    """SQL conditions on ``$4 - opened_at`` for each age bucket."""
    conditions: list[str] = []
    lower = 0
    for upper in AGE_BUCKET_BOUNDS_DAYS:
        conditions.append(f"$4 - opened_at >= interval '{lower} days' AND $4 - opened_at < interval '{upper} days'")
        lower = upper
    conditions.append(f"$4 - opened_at >= interval '{lower} days'")
    return conditions
