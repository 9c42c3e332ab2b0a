"""SQL for recorded assessments: batched inserts from the recorder, keyset pages, and the backtest's replay reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg

from services.risk.domain import CONTEXT_FIELDS, AssessmentContext, AssessmentRecord, AssessmentResult, Decision
from services.risk.store import PoolSource, audit_export_once, to_datetime

# The audit action of an assessments export (ListAssessments read with an export id).
ASSESSMENTS_EXPORTED = "assessments_exported"

_INSERT = (
    "INSERT INTO assessments (organization_id, assessment_id, transfer_id, debit_account_id, credit_account_id,"
    " decision, score, reason_codes, rules_version, evaluation_us, case_id, anomaly_score, anomaly_shadow, context,"
    " features, list_outcome, assessed_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15::jsonb, $16, $17)"
    " ON CONFLICT DO NOTHING"
)


def context_from_json(raw: str | dict[str, Any]) -> AssessmentContext:
    body = json.loads(raw) if isinstance(raw, str) else dict(raw)
    body["amr"] = tuple(body.get("amr", ()))
    return AssessmentContext(**body)


def _context_dict(context: AssessmentContext) -> dict[str, Any]:
    # Field by field: dataclasses.asdict deep-copies, and the recorder writes every assessment.
    return {name: getattr(context, name) for name in CONTEXT_FIELDS}


def record_to_json(record: AssessmentRecord) -> str:
    """A self-contained snapshot (cases keep the assessment that opened them)."""
    result = record.result
    return json.dumps(
        {
            "organization_id": record.organization_id,
            "result": {**asdict(result), "decision": result.decision.value},
            "context": asdict(record.context),
            "features": dict(record.features),
            "list_outcome": record.list_outcome,
        }
    )


def record_from_json(raw: str) -> AssessmentRecord:
    body = json.loads(raw)
    result = dict(body["result"])
    result["decision"] = Decision(result["decision"])
    result["reason_codes"] = tuple(result["reason_codes"])
    return AssessmentRecord(
        organization_id=body["organization_id"],
        result=AssessmentResult(**result),
        context=context_from_json(body["context"]),
        features=body["features"],
        list_outcome=body["list_outcome"],
    )


def _row_values(record: AssessmentRecord) -> tuple[Any, ...]:
    result = record.result
    context = record.context
    return (
        uuid.UUID(record.organization_id),
        uuid.UUID(result.assessment_id),
        context.transfer_id,
        uuid.UUID(context.debit_account_id),
        uuid.UUID(context.credit_account_id),
        result.decision.value,
        result.score,
        list(result.reason_codes),
        result.rules_version,
        result.evaluation_us,
        uuid.UUID(result.case_id) if result.case_id else None,
        result.anomaly_score,
        result.anomaly_shadow,
        json.dumps(_context_dict(context)),
        json.dumps(dict(record.features)),
        record.list_outcome,
        to_datetime(result.assessed_at_s),
    )


def _record(row: asyncpg.Record) -> AssessmentRecord:
    context = context_from_json(row["context"])
    return AssessmentRecord(
        organization_id=str(row["organization_id"]),
        result=AssessmentResult(
            assessment_id=str(row["assessment_id"]),
            decision=Decision(row["decision"]),
            score=row["score"],
            reason_codes=tuple(row["reason_codes"]),
            rules_version=row["rules_version"],
            evaluation_us=row["evaluation_us"],
            anomaly_score=row["anomaly_score"],
            anomaly_shadow=row["anomaly_shadow"],
            assessed_at_s=row["assessed_at"].timestamp(),
            context_digest=context.digest(),
            case_id="" if row["case_id"] is None else str(row["case_id"]),
        ),
        context=context,
        features=json.loads(row["features"]),
        list_outcome=row["list_outcome"],
    )


class AssessmentStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def insert_batch(self, records: Sequence[AssessmentRecord]) -> None:
        """One round trip for the whole batch; a replayed assessment id keeps the first row."""
        async with self._pool.acquire() as connection:
            await connection.executemany(_INSERT, [_row_values(record) for record in records])

    async def page(
        self,
        organization_id: str,
        *,
        account_id: uuid.UUID | None,
        decision: Decision | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AssessmentRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM assessments WHERE organization_id = $1"
            " AND ($2::uuid IS NULL OR debit_account_id = $2 OR credit_account_id = $2)"
            " AND ($3::smallint IS NULL OR decision = $3)"
            " AND ($4::timestamptz IS NULL OR assessed_at >= $4) AND ($5::timestamptz IS NULL OR assessed_at < $5)"
            " AND ($6::timestamptz IS NULL OR (assessed_at, assessment_id) < ($6, $7))"
            " ORDER BY assessed_at DESC, assessment_id DESC LIMIT $8",
            uuid.UUID(organization_id),
            account_id,
            None if decision is None else decision.value,
            start,
            end,
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_record(row) for row in rows]

    async def audit_export(
        self, organization_id: str, export_id: uuid.UUID, actor: str, detail: dict[str, str]
    ) -> dict[str, str] | None:
        """Audits an export of the assessments once: None when this call recorded it, else the first detail."""
        return await audit_export_once(self._pool, organization_id, ASSESSMENTS_EXPORTED, export_id, actor, detail)

    async def replay_page(
        self,
        organization_id: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AssessmentRecord]:
        """Oldest first, for backtests."""
        rows = await self._pool.fetch(
            "SELECT * FROM assessments WHERE organization_id = $1 AND assessed_at >= $2 AND assessed_at < $3"
            " AND ($4::timestamptz IS NULL OR (assessed_at, assessment_id) > ($4, $5))"
            " ORDER BY assessed_at, assessment_id LIMIT $6",
            uuid.UUID(organization_id),
            start,
            end,
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_record(row) for row in rows]
