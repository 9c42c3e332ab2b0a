"""Auth's record types and how long each is kept (docs/retention.md has the table and the reasons), and the
retention job that purges them with the kit's bounded loop (services/kit/retention.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.auth.store_retention import AuthRetentionStore
from services.kit.config import Env
from services.kit.retention import PurgeTarget, RecordRetention, RetentionJob, RetentionPolicy, load_retention_policy

SESSIONS = RecordRetention("auth_sessions", default_days=90, min_days=7, max_days=3650)
CHALLENGES = RecordRetention("auth_challenges", default_days=30, min_days=1, max_days=365)
LOGIN_ATTEMPTS = RecordRetention("auth_login_attempts", default_days=7, min_days=1, max_days=90)
IDEMPOTENCY_KEYS = RecordRetention("auth_idempotency_keys", default_days=400, min_days=30, max_days=3650)
AUDIT_EVENTS = RecordRetention("auth_audit_events", default_days=2555, min_days=1825, max_days=7300)
AUTH_RECORDS = (SESSIONS, CHALLENGES, LOGIN_ATTEMPTS, IDEMPOTENCY_KEYS, AUDIT_EVENTS)


def load_auth_retention(env: Env) -> RetentionPolicy:
    return load_retention_policy(env, AUTH_RECORDS)


def auth_retention_job(
    pool: Callable[[], asyncpg.Pool], policy: RetentionPolicy, clock: Callable[[], datetime]
) -> RetentionJob:
    store = AuthRetentionStore(pool)
    targets = [
        PurgeTarget(SESSIONS.record_type, store.purge_ended_sessions),
        PurgeTarget(CHALLENGES.record_type, store.purge_mfa_challenges),
        PurgeTarget(CHALLENGES.record_type, store.purge_device_challenges),
        PurgeTarget(CHALLENGES.record_type, store.purge_passkey_ceremonies),
        PurgeTarget(CHALLENGES.record_type, store.purge_invitations),
        PurgeTarget(LOGIN_ATTEMPTS.record_type, store.purge_login_failure_counters),
        PurgeTarget(IDEMPOTENCY_KEYS.record_type, store.purge_idempotency_keys),
        PurgeTarget(AUDIT_EVENTS.record_type, store.purge_audit_events),
    ]
    return RetentionJob("auth", policy, targets, clock=clock)
