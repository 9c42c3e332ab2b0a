"""SQL of risk's retention purges: each deletes at most ``limit`` rows whose retention clock started before the
cut-off, in one short transaction, skipping rows another replica is purging. What a record still refers to stays:
an assessment is kept while a review case refers to it, and a case is purged only once closed and settled (expired,
or its decision confirmed by the ledger), with its events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.retention import run_purge
from services.risk.domain import CaseStatus

_PURGE_ASSESSMENTS_SQL = """
WITH gone AS (
    DELETE FROM assessments WHERE (organization_id, assessment_id) IN (
        SELECT a.organization_id, a.assessment_id FROM assessments a
        WHERE a.assessed_at < $1
          AND NOT EXISTS (SELECT 1 FROM review_cases c
                          WHERE c.organization_id = a.organization_id AND c.assessment_id = a.assessment_id)
        LIMIT $2 FOR UPDATE OF a SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

# Events go with their case, in the same statement (the foreign key is checked at its end).
_PURGE_CASES_SQL = """
WITH due AS (
    SELECT organization_id, case_id FROM review_cases
    WHERE closed_at < $1 AND (status = $3 OR ledger_confirmed)
    LIMIT $2 FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM case_events WHERE (organization_id, case_id) IN (SELECT organization_id, case_id FROM due)
), gone AS (
    DELETE FROM review_cases WHERE (organization_id, case_id) IN (SELECT organization_id, case_id FROM due)
    RETURNING 1
)
SELECT count(*) FROM gone"""

_PURGE_AML_REPORTS_SQL = """
WITH gone AS (
    DELETE FROM aml_reports WHERE (organization_id, aml_report_id) IN (
        SELECT organization_id, aml_report_id FROM aml_reports WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_AUDIT_EVENTS_SQL = """
WITH gone AS (
    DELETE FROM audit_events WHERE (organization_id, audit_id) IN (
        SELECT organization_id, audit_id FROM audit_events WHERE occurred_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""


# A complaint goes once resolved (its clock starts at resolved_at) and every notification about it was sent, with its
# notes, steps and notifications in the same statement. Open complaints are kept whatever their age.
_PURGE_COMPLAINTS_SQL = """
WITH due AS (
    SELECT c.organization_id, c.complaint_id FROM complaints c
    WHERE c.resolved_at < $1
      AND NOT EXISTS (SELECT 1 FROM complaint_notifications n
                      WHERE n.organization_id = c.organization_id AND n.complaint_id = c.complaint_id
                        AND n.sent_at IS NULL)
    LIMIT $2 FOR UPDATE OF c SKIP LOCKED
), notes AS (
    DELETE FROM complaint_notes WHERE (organization_id, complaint_id) IN (SELECT organization_id, complaint_id FROM due)
), steps AS (
    DELETE FROM complaint_events WHERE (organization_id, complaint_id) IN (SELECT organization_id, complaint_id FROM due)
), notifications AS (
    DELETE FROM complaint_notifications
    WHERE (organization_id, complaint_id) IN (SELECT organization_id, complaint_id FROM due)
), gone AS (
    DELETE FROM complaints WHERE (organization_id, complaint_id) IN (SELECT organization_id, complaint_id FROM due)
    RETURNING 1
)
SELECT count(*) FROM gone"""


class RiskRetentionStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def purge_assessments(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_ASSESSMENTS_SQL, cutoff, limit)

    async def purge_settled_cases(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_CASES_SQL, cutoff, limit, CaseStatus.EXPIRED.value)

    async def purge_aml_reports(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_AML_REPORTS_SQL, cutoff, limit)

    async def purge_resolved_complaints(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_COMPLAINTS_SQL, cutoff, limit)

    async def purge_audit_events(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_AUDIT_EVENTS_SQL, cutoff, limit)
