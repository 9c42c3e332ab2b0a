"""Risk's retention job against real Postgres: assessments, settled cases (with their events), AML reports and audit
events past retention are purged in bounded batches; young rows, open or unsettled cases and the assessments they
refer to are kept; a second sweep purges nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.kit.config import ConfigError, Env
from services.kit.retention import RetentionJob
from services.risk.__main__ import MIGRATIONS_DIR
from services.risk.config import load_risk_config
from services.risk.domain import CaseStatus
from services.risk.retention import load_risk_retention, risk_retention_job
from tests.support.retention import migrated_pool, sized

pytestmark = pytest.mark.integration

NOW = datetime(2032, 1, 15, 8, 0, tzinfo=UTC)
ORG = uuid.uuid4()
OLD_DAYS = 2000  # past the five-year defaults
YOUNG_DAYS = 100


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url, MIGRATIONS_DIR, "risk") as created:
        yield created


def _job(pool: asyncpg.Pool, *, batch_rows: int = 500, rounds_max: int = 100) -> RetentionJob:
    job = risk_retention_job(lambda: pool, load_risk_retention(Env({})), lambda: NOW)
    return sized(job, batch_rows=batch_rows, rounds_max=rounds_max)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _assessment(pool: asyncpg.Pool, age_days: float) -> uuid.UUID:
    assessment_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO assessments (organization_id, assessment_id, transfer_id, debit_account_id, credit_account_id,"
        " decision, score, reason_codes, rules_version, evaluation_us, anomaly_score, anomaly_shadow, context,"
        " features, list_outcome, assessed_at)"
        " VALUES ($1, $2, $3, $4, $5, 1, 10, '{}', 1, 50, 0, true, '{}', '{}', '', $6)",
        ORG,
        assessment_id,
        str(assessment_id),
        uuid.uuid4(),
        uuid.uuid4(),
        _ago(age_days),
    )
    return assessment_id


async def _case(
    pool: asyncpg.Pool, assessment_id: uuid.UUID, *, status: CaseStatus, closed_days: float | None, confirmed: bool
) -> uuid.UUID:
    case_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO review_cases (organization_id, case_id, assessment_id, transfer_id, debit_account_id,"
        " credit_account_id, status, assessment, ledger_confirmed, opened_at, closed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        ORG,
        case_id,
        assessment_id,
        str(assessment_id),
        uuid.uuid4(),
        uuid.uuid4(),
        status.value,
        json.dumps({}),
        confirmed,
        _ago(OLD_DAYS + 10),
        None if closed_days is None else _ago(closed_days),
    )
    await pool.execute(
        "INSERT INTO case_events (organization_id, case_id, action, actor_principal_id, note, occurred_at)"
        " VALUES ($1, $2, 'opened', 'system', '', $3)",
        ORG,
        case_id,
        _ago(OLD_DAYS + 10),
    )
    return case_id


async def _ids(pool: asyncpg.Pool, sql: str) -> set[uuid.UUID]:
    return {row[0] for row in await pool.fetch(sql)}


async def test_assessments_and_cases_purged_past_retention_unless_still_referenced(pool: asyncpg.Pool) -> None:
    unreferenced_old = [await _assessment(pool, OLD_DAYS) for _ in range(3)]
    young = await _assessment(pool, YOUNG_DAYS)
    # An old assessment under an open case, one under an approved case the ledger never confirmed, one under a case
    # settled recently: all still referenced or within retention, so kept with their cases.
    open_case_assessment = await _assessment(pool, OLD_DAYS)
    open_case = await _case(pool, open_case_assessment, status=CaseStatus.OPEN, closed_days=None, confirmed=False)
    unsettled_assessment = await _assessment(pool, OLD_DAYS)
    unsettled_case = await _case(
        pool, unsettled_assessment, status=CaseStatus.APPROVED, closed_days=OLD_DAYS, confirmed=False
    )
    recent_assessment = await _assessment(pool, OLD_DAYS)
    recent_case = await _case(pool, recent_assessment, status=CaseStatus.REJECTED, closed_days=30, confirmed=True)
    # Settled long ago (confirmed, or expired without a ledger decision): purged with their events and assessment.
    settled_assessment = await _assessment(pool, OLD_DAYS)
    await _case(pool, settled_assessment, status=CaseStatus.REJECTED, closed_days=OLD_DAYS, confirmed=True)
    expired_assessment = await _assessment(pool, OLD_DAYS)
    await _case(pool, expired_assessment, status=CaseStatus.EXPIRED, closed_days=OLD_DAYS, confirmed=False)

    job = _job(pool, batch_rows=2, rounds_max=1)
    first = await job.sweep_once()
    assert first["risk_cases"] == 2
    assert first["risk_assessments"] == 2
    while any((await job.sweep_once()).values()):
        pass

    kept_cases = {open_case, unsettled_case, recent_case}
    assert await _ids(pool, "SELECT case_id FROM review_cases") == kept_cases
    assert await _ids(pool, "SELECT DISTINCT case_id FROM case_events") == kept_cases
    kept_assessments = await _ids(pool, "SELECT assessment_id FROM assessments")
    assert kept_assessments == {young, open_case_assessment, unsettled_assessment, recent_assessment}
    assert not kept_assessments & {*unreferenced_old, settled_assessment, expired_assessment}
    assert set((await _job(pool).sweep_once()).values()) == {0}


async def test_aml_reports_and_audit_events_purged_past_retention(pool: asyncpg.Pool) -> None:
    for age_days in (OLD_DAYS, YOUNG_DAYS):
        await pool.execute(
            "INSERT INTO aml_reports (organization_id, aml_report_id, kind, account_id, customer_id, transfer_ids,"
            " total_amount_minor, currency, threshold_minor, window_start, window_end, trigger_transfer_id,"
            " created_at) VALUES ($1, $2, 1, $3, '', '{}', 100, 'EUR', 100, $4, $4, $5, $4)",
            ORG,
            uuid.uuid4(),
            uuid.uuid4(),
            _ago(age_days),
            str(uuid.uuid4()),
        )
    for age_days in (2600, OLD_DAYS):
        await pool.execute(
            "INSERT INTO audit_events (organization_id, action, subject, actor_principal_id, detail, occurred_at)"
            " VALUES ($1, 'rules.published', 's', 'p', '{}', $2)",
            ORG,
            _ago(age_days),
        )
    purged = await _job(pool).sweep_once()
    assert purged["risk_aml_reports"] == 1
    # Audit events are kept seven years: 2000 days is within, 2600 past.
    assert purged["risk_audit_events"] == 1
    assert await pool.fetchval("SELECT count(*) FROM aml_reports") == 1
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == 1
    assert set((await _job(pool).sweep_once()).values()) == {0}


async def _complaint(
    pool: asyncpg.Pool, *, resolved_days_ago: float | None, unsent_notification: bool = False
) -> None:
    complaint_id = uuid.uuid4()
    opened = _ago((resolved_days_ago or 0) + 30)
    resolved = _ago(resolved_days_ago) if resolved_days_ago is not None else None
    await pool.execute(
        "INSERT INTO complaints (organization_id, complaint_id, reference_number, customer_id, category, status,"
        " transfer_id, card_id, description, attachment_references, opened_by_principal_id, opened_at, updated_at,"
        " acknowledge_due_at, resolve_due_at, resolved_at) VALUES ($1, $2, $3, 'c', 4, 4, '', '', 'slow app',"
        " '{}', 'c', $4, $4, $4, $4, $5)",
        ORG,
        complaint_id,
        f"CMP-{complaint_id.hex[:8]}",
        opened,
        resolved,
    )
    await pool.execute(
        "INSERT INTO complaint_notes (organization_id, complaint_note_id, complaint_id, author_principal_id,"
        " from_customer, visibility, text, created_at) VALUES ($1, $2, $3, 'c', true, 2, 'more detail', $4)",
        ORG,
        uuid.uuid4(),
        complaint_id,
        opened,
    )
    await pool.execute(
        "INSERT INTO complaint_events (organization_id, complaint_id, action, actor_principal_id, trace_id,"
        " occurred_at) VALUES ($1, $2, 'opened', 'c', '', $3)",
        ORG,
        complaint_id,
        opened,
    )
    await pool.execute(
        "INSERT INTO complaint_notifications (organization_id, notification_id, complaint_id, customer_id,"
        " reference_number, status_name, message, created_at, sent_at) VALUES ($1, $2, $3, 'c', 'r', 's', 'm', $4,"
        " $5)",
        ORG,
        uuid.uuid4(),
        complaint_id,
        opened,
        None if unsent_notification else opened,
    )


async def test_resolved_complaints_purged_with_their_rows_open_and_unnotified_ones_kept(pool: asyncpg.Pool) -> None:
    await _complaint(pool, resolved_days_ago=OLD_DAYS)
    await _complaint(pool, resolved_days_ago=OLD_DAYS)
    await _complaint(pool, resolved_days_ago=YOUNG_DAYS)
    await _complaint(pool, resolved_days_ago=None)  # open for years: kept
    await _complaint(pool, resolved_days_ago=OLD_DAYS, unsent_notification=True)  # the customer not told yet
    purged = await _job(pool, batch_rows=1).sweep_once()
    assert purged["risk_complaints"] == 2
    assert await pool.fetchval("SELECT count(*) FROM complaints") == 3
    for table in ("complaint_notes", "complaint_events", "complaint_notifications"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 3  # noqa: S608 -- fixed table names
    assert set((await _job(pool).sweep_once()).values()) == {0}


def test_risk_refuses_a_retention_below_the_aml_floor() -> None:
    with pytest.raises(ConfigError, match="RETENTION_RISK_AML_REPORTS_DAYS must be between 1825 and 3650"):
        load_risk_config(Env({"RETENTION_RISK_AML_REPORTS_DAYS": "365"}))
    assert load_risk_config(Env({"RETENTION_RISK_CASES_DAYS": "2000"})).retention.days("risk_cases") == 2000
