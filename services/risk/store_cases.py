"""SQL for review cases (with their audited history) and AML reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.db import transaction
from services.risk.domain import (
    AmlReport,
    AmlReportKind,
    AssessmentRecord,
    CaseEvent,
    CaseNotFound,
    CaseStatus,
    ReviewCase,
)
from services.risk.store import PoolSource, to_datetime, to_seconds
from services.risk.store_assessments import record_from_json, record_to_json

SYSTEM_ACTOR = ""


async def _add_event(
    connection: asyncpg.Connection, org: uuid.UUID, case_id: uuid.UUID, action: str, actor: str, note: str
) -> None:
    await connection.execute(
        "INSERT INTO case_events (organization_id, case_id, action, actor_principal_id, note)"
        " VALUES ($1, $2, $3, $4, $5)",
        org,
        case_id,
        action,
        actor,
        note,
    )


def _case(row: asyncpg.Record, history: tuple[CaseEvent, ...] = ()) -> ReviewCase:
    return ReviewCase(
        case_id=str(row["case_id"]),
        transfer_id=row["transfer_id"],
        assessment=record_from_json(row["assessment"]),
        status=CaseStatus(row["status"]),
        hold_expires_at_s=to_seconds(row["hold_expires_at"]),
        resolved_by_principal_id=row["resolved_by_principal_id"],
        resolution_note=row["resolution_note"],
        resolve_request_id="" if row["resolve_request_id"] is None else str(row["resolve_request_id"]),
        ledger_confirmed=row["ledger_confirmed"],
        opened_at_s=row["opened_at"].timestamp(),
        closed_at_s=to_seconds(row["closed_at"]),
        history=history,
    )


class CaseStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def open_case(self, case_id: str, record: AssessmentRecord) -> str:
        """Opens the case of a REVIEW assessment; a replayed assessment returns the case opened the first time."""
        org = uuid.UUID(record.organization_id)
        async with transaction(self._pool) as connection:
            inserted = await connection.fetchval(
                "INSERT INTO review_cases (organization_id, case_id, assessment_id, transfer_id, debit_account_id,"
                " credit_account_id, status, assessment, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)"
                " ON CONFLICT (organization_id, assessment_id) DO NOTHING RETURNING case_id",
                org,
                uuid.UUID(case_id),
                uuid.UUID(record.result.assessment_id),
                record.context.transfer_id,
                uuid.UUID(record.context.debit_account_id),
                uuid.UUID(record.context.credit_account_id),
                CaseStatus.OPEN.value,
                record_to_json(record),
                to_datetime(record.result.assessed_at_s),
            )
            if inserted is None:
                existing = await connection.fetchval(
                    "SELECT case_id FROM review_cases WHERE organization_id = $1 AND assessment_id = $2",
                    org,
                    uuid.UUID(record.result.assessment_id),
                )
                return str(existing)
            await _add_event(connection, org, inserted, "opened", SYSTEM_ACTOR, ", ".join(record.result.reason_codes))
        return str(inserted)

    async def get(self, organization_id: str, case_id: str) -> ReviewCase:
        org = uuid.UUID(organization_id)
        row = await self._pool.fetchrow(
            "SELECT * FROM review_cases WHERE organization_id = $1 AND case_id = $2", org, uuid.UUID(case_id)
        )
        if row is None:
            raise CaseNotFound("case not found")
        events = await self._pool.fetch(
            "SELECT * FROM case_events WHERE organization_id = $1 AND case_id = $2 ORDER BY event_number",
            org,
            uuid.UUID(case_id),
        )
        history = tuple(
            CaseEvent(e["action"], e["actor_principal_id"], e["note"], e["occurred_at"].timestamp()) for e in events
        )
        return _case(row, history)

    async def page(
        self,
        organization_id: str,
        *,
        status: CaseStatus | None,
        account_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ReviewCase]:
        rows = await self._pool.fetch(
            "SELECT * FROM review_cases WHERE organization_id = $1 AND ($2::smallint IS NULL OR status = $2)"
            " AND ($3::uuid IS NULL OR debit_account_id = $3 OR credit_account_id = $3)"
            " AND ($4::timestamptz IS NULL OR (opened_at, case_id) > ($4, $5))"
            " ORDER BY opened_at, case_id LIMIT $6",
            uuid.UUID(organization_id),
            None if status is None else status.value,
            account_id,
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_case(row) for row in rows]

    async def resolve(
        self,
        organization_id: str,
        case_id: str,
        decide: Callable[[ReviewCase], CaseStatus | None],
        *,
        actor: str,
        note: str,
        request_id: str,
    ) -> None:
        """Locks the case, asks ``decide`` for the new status (None: this request already resolved it) and records
        the decision with its audit event in the same transaction."""
        org = uuid.UUID(organization_id)
        case_uuid = uuid.UUID(case_id)
        async with transaction(self._pool) as connection:
            row = await connection.fetchrow(
                "SELECT * FROM review_cases WHERE organization_id = $1 AND case_id = $2 FOR UPDATE", org, case_uuid
            )
            if row is None:
                raise CaseNotFound("case not found")
            status = decide(_case(row))
            if status is None:
                return
            await connection.execute(
                "UPDATE review_cases SET status = $3, resolved_by_principal_id = $4, resolution_note = $5,"
                " resolve_request_id = $6, closed_at = now() WHERE organization_id = $1 AND case_id = $2",
                org,
                case_uuid,
                status.value,
                actor,
                note,
                uuid.UUID(request_id),
            )
            await _add_event(connection, org, case_uuid, status.name.lower(), actor, note)

    async def record_event(self, organization_id: str, case_id: str, action: str, actor: str, note: str) -> None:
        async with transaction(self._pool) as connection:
            await _add_event(connection, uuid.UUID(organization_id), uuid.UUID(case_id), action, actor, note)

    async def confirm_ledger(self, organization_id: str, case_id: str, action: str) -> None:
        org = uuid.UUID(organization_id)
        async with transaction(self._pool) as connection:
            await connection.execute(
                "UPDATE review_cases SET ledger_confirmed = true WHERE organization_id = $1 AND case_id = $2",
                org,
                uuid.UUID(case_id),
            )
            await _add_event(connection, org, uuid.UUID(case_id), action, SYSTEM_ACTOR, "")

    async def set_hold_expiry(self, organization_id: str, case_id: str, hold_expires_at_s: float) -> None:
        await self._pool.execute(
            "UPDATE review_cases SET hold_expires_at = $3 WHERE organization_id = $1 AND case_id = $2",
            uuid.UUID(organization_id),
            uuid.UUID(case_id),
            to_datetime(hold_expires_at_s),
        )

    async def expire_for_transfer(self, organization_id: str, transfer_id: str) -> int:
        org = uuid.UUID(organization_id)
        async with transaction(self._pool) as connection:
            case_ids = await connection.fetch(
                "UPDATE review_cases SET status = $3, closed_at = now() WHERE organization_id = $1"
                " AND transfer_id = $2 AND status = $4 RETURNING case_id",
                org,
                transfer_id,
                CaseStatus.EXPIRED.value,
                CaseStatus.OPEN.value,
            )
            for row in case_ids:
                await _add_event(
                    connection, org, row["case_id"], "expired", SYSTEM_ACTOR, "the ledger's hold expired"
                )
        return len(case_ids)


def _report(row: asyncpg.Record) -> AmlReport:
    return AmlReport(
        aml_report_id=str(row["aml_report_id"]),
        kind=AmlReportKind(row["kind"]),
        account_id=str(row["account_id"]),
        customer_id=row["customer_id"],
        transfer_ids=tuple(row["transfer_ids"]),
        total_amount_minor=row["total_amount_minor"],
        currency=row["currency"],
        threshold_minor=row["threshold_minor"],
        window_start_s=row["window_start"].timestamp(),
        window_end_s=row["window_end"].timestamp(),
        created_at_s=row["created_at"].timestamp(),
    )


class AmlReportStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def insert(self, organization_id: str, report: AmlReport, trigger_transfer_id: str) -> bool:
        """False when this kind of report for this transfer already exists (a redelivered event)."""
        inserted = await self._pool.fetchval(
            "INSERT INTO aml_reports (organization_id, aml_report_id, kind, account_id, customer_id, transfer_ids,"
            " total_amount_minor, currency, threshold_minor, window_start, window_end, trigger_transfer_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING RETURNING 1",
            uuid.UUID(organization_id),
            uuid.UUID(report.aml_report_id),
            report.kind.value,
            uuid.UUID(report.account_id),
            report.customer_id,
            list(report.transfer_ids),
            report.total_amount_minor,
            report.currency,
            report.threshold_minor,
            to_datetime(report.window_start_s),
            to_datetime(report.window_end_s),
            trigger_transfer_id,
        )
        return inserted is not None

    async def latest_window_end(self, organization_id: str, account_id: str, kind: AmlReportKind) -> float | None:
        value = await self._pool.fetchval(
            "SELECT max(window_end) FROM aml_reports WHERE organization_id = $1 AND account_id = $2 AND kind = $3",
            uuid.UUID(organization_id),
            uuid.UUID(account_id),
            kind.value,
        )
        return to_seconds(value)

    async def page(
        self,
        organization_id: str,
        *,
        kind: AmlReportKind | None,
        account_id: uuid.UUID | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AmlReport]:
        rows = await self._pool.fetch(
            "SELECT * FROM aml_reports WHERE organization_id = $1 AND ($2::smallint IS NULL OR kind = $2)"
            " AND ($3::uuid IS NULL OR account_id = $3)"
            " AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5)"
            " AND ($6::timestamptz IS NULL OR (created_at, aml_report_id) < ($6, $7))"
            " ORDER BY created_at DESC, aml_report_id DESC LIMIT $8",
            uuid.UUID(organization_id),
            None if kind is None else kind.value,
            account_id,
            start,
            end,
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_report(row) for row in rows]
