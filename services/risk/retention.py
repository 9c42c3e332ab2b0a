"""Risk's record types and how long each is kept (docs/retention.md has the table and the reasons), and the
retention job that purges them with the kit's bounded loop (services/kit/retention.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.config import Env
from services.kit.retention import PurgeTarget, RecordRetention, RetentionJob, RetentionPolicy, load_retention_policy
from services.risk.store_retention import RiskRetentionStore

ASSESSMENTS = RecordRetention("risk_assessments", default_days=1825, min_days=365, max_days=3650)
CASES = RecordRetention("risk_cases", default_days=1825, min_days=1825, max_days=3650)
AML_REPORTS = RecordRetention("risk_aml_reports", default_days=1825, min_days=1825, max_days=3650)
AUDIT_EVENTS = RecordRetention("risk_audit_events", default_days=2555, min_days=1825, max_days=7300)
# Five years after the complaint was resolved (complaint-handling records; open ones are kept whatever their age).
COMPLAINTS = RecordRetention("risk_complaints", default_days=1825, min_days=1825, max_days=3650)
RISK_RECORDS = (ASSESSMENTS, CASES, AML_REPORTS, AUDIT_EVENTS, COMPLAINTS)


def load_risk_retention(env: Env) -> RetentionPolicy:
    return load_retention_policy(env, RISK_RECORDS)


def risk_retention_job(
    pool: Callable[[], asyncpg.Pool], policy: RetentionPolicy, clock: Callable[[], datetime]
) -> RetentionJob:
    store = RiskRetentionStore(pool)
    targets = [
        # Cases first: the assessment of a case purged in this sweep is purged in the same sweep.
        PurgeTarget(CASES.record_type, store.purge_settled_cases),
        PurgeTarget(ASSESSMENTS.record_type, store.purge_assessments),
        PurgeTarget(AML_REPORTS.record_type, store.purge_aml_reports),
        PurgeTarget(AUDIT_EVENTS.record_type, store.purge_audit_events),
        PurgeTarget(COMPLAINTS.record_type, store.purge_resolved_complaints),
    ]
    return RetentionJob("risk", policy, targets, clock=clock)
