"""SQL of auth's retention purges: each deletes at most ``limit`` rows whose retention clock started before the
cut-off, in one short transaction, skipping rows another replica is purging. A record's retention clock starts when
it stops being usable: a session when it expired or was revoked (a live session is never purged, however old), a
challenge or counter when it expired, an idempotency key or an audit event when it was written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.retention import run_purge

# Refresh tokens go with their session, in the same statement (the foreign key is checked at its end).
_PURGE_SESSIONS_SQL = """
WITH due AS (
    SELECT session_id FROM sessions WHERE expires_at < $1 OR revoked_at < $1
    LIMIT $2 FOR UPDATE SKIP LOCKED
), tokens AS (
    DELETE FROM refresh_tokens WHERE session_id IN (SELECT session_id FROM due)
), gone AS (
    DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM due) RETURNING 1
)
SELECT count(*) FROM gone"""

_PURGE_MFA_CHALLENGES_SQL = """
WITH gone AS (
    DELETE FROM mfa_challenges WHERE mfa_challenge_id IN (
        SELECT mfa_challenge_id FROM mfa_challenges WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_DEVICE_CHALLENGES_SQL = """
WITH gone AS (
    DELETE FROM device_challenges WHERE device_challenge_id IN (
        SELECT device_challenge_id FROM device_challenges WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_PASSKEY_CEREMONIES_SQL = """
WITH gone AS (
    DELETE FROM passkey_ceremonies WHERE ceremony_id IN (
        SELECT ceremony_id FROM passkey_ceremonies WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_INVITATIONS_SQL = """
WITH gone AS (
    DELETE FROM invitations WHERE token_hash IN (
        SELECT token_hash FROM invitations WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_LOGIN_FAILURE_COUNTERS_SQL = """
WITH gone AS (
    DELETE FROM login_failure_counters WHERE counter_key IN (
        SELECT counter_key FROM login_failure_counters WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_IDEMPOTENCY_KEYS_SQL = """
WITH gone AS (
    DELETE FROM idempotency_keys WHERE (organization_id, request_id) IN (
        SELECT organization_id, request_id FROM idempotency_keys WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_AUDIT_EVENTS_SQL = """
WITH gone AS (
    DELETE FROM audit_events WHERE audit_event_id IN (
        SELECT audit_event_id FROM audit_events WHERE occurred_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""


# The audit trail's append-only trigger lets the deletes of a transaction that set this through (migration 0006).
_ALLOW_AUDIT_PURGE_SQL = "SET LOCAL wallet.retention_purge = 'on'"


class AuthRetentionStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def purge_ended_sessions(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_SESSIONS_SQL, cutoff, limit)

    async def purge_mfa_challenges(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_MFA_CHALLENGES_SQL, cutoff, limit)

    async def purge_device_challenges(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_DEVICE_CHALLENGES_SQL, cutoff, limit)

    async def purge_passkey_ceremonies(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_PASSKEY_CEREMONIES_SQL, cutoff, limit)

    async def purge_invitations(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_INVITATIONS_SQL, cutoff, limit)

    async def purge_login_failure_counters(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_LOGIN_FAILURE_COUNTERS_SQL, cutoff, limit)

    async def purge_idempotency_keys(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_IDEMPOTENCY_KEYS_SQL, cutoff, limit)

    async def purge_audit_events(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_AUDIT_EVENTS_SQL, cutoff, limit, prelude=_ALLOW_AUDIT_PURGE_SQL)
