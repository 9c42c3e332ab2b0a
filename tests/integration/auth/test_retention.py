"""Auth's retention job against real Postgres: rows past retention are purged in bounded batches, young rows and
live sessions (however old) are kept, the audit trail stays append-only for everyone else, and a second sweep
purges nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.auth.__main__ import MIGRATIONS_DIR
from services.auth.retention import AUTH_RECORDS, auth_retention_job, load_auth_retention
from services.kit.config import ConfigError, Env
from services.kit.retention import RetentionJob
from tests.support.retention import migrated_pool, sized

pytestmark = pytest.mark.integration

NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
PLATFORM_ORG = uuid.UUID("00000000-0000-0000-0000-000000000000")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url, MIGRATIONS_DIR, "auth") as created:
        yield created


def _job(pool: asyncpg.Pool, *, batch_rows: int = 500, rounds_max: int = 100) -> RetentionJob:
    job = auth_retention_job(lambda: pool, load_auth_retention(Env({})), lambda: NOW)
    return sized(job, batch_rows=batch_rows, rounds_max=rounds_max)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _principal(pool: asyncpg.Pool) -> uuid.UUID:
    principal_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO principals (organization_id, principal_id, kind, display_name, status)"
        " VALUES ($1, $2, 'member', 'Ada', 'active')",
        PLATFORM_ORG,
        principal_id,
    )
    return principal_id


async def _session(
    pool: asyncpg.Pool,
    principal_id: uuid.UUID,
    *,
    created_days: float,
    expires_days: float,
    revoked_days: float | None,
) -> uuid.UUID:
    """A session created, expiring and (maybe) revoked that many days before NOW (negative: after NOW), with one
    refresh token."""
    session_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO sessions (session_id, organization_id, principal_id, kind, amr, auth_time, created_at,"
        " last_used_at, expires_at, revoked_at) VALUES ($1, $2, $3, 'password', '{pwd}', $4, $4, $4, $5, $6)",
        session_id,
        PLATFORM_ORG,
        principal_id,
        _ago(created_days),
        _ago(expires_days),
        None if revoked_days is None else _ago(revoked_days),
    )
    await pool.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
        uuid.uuid4().bytes,
        session_id,
        _ago(created_days),
    )
    return session_id


async def _ids(pool: asyncpg.Pool, sql: str) -> set[uuid.UUID]:
    return {row[0] for row in await pool.fetch(sql)}


async def test_sessions_purged_after_they_end_in_bounded_batches_and_live_ones_kept(pool: asyncpg.Pool) -> None:
    principal_id = await _principal(pool)
    expired_long_ago = [
        await _session(pool, principal_id, created_days=400, expires_days=300, revoked_days=None) for _ in range(5)
    ]
    revoked_long_ago = await _session(pool, principal_id, created_days=400, expires_days=-10, revoked_days=100)
    ended_recently = await _session(pool, principal_id, created_days=100, expires_days=30, revoked_days=None)
    # Created a year ago and still live (a long session policy): referenced by its holder, never purged.
    live_and_old = await _session(pool, principal_id, created_days=365, expires_days=-1, revoked_days=None)

    job = _job(pool, batch_rows=2, rounds_max=1)
    first = await job.sweep_once()
    assert first["auth_sessions"] == 2
    while (await job.sweep_once())["auth_sessions"]:
        pass

    kept = await _ids(pool, "SELECT session_id FROM sessions")
    assert kept == {ended_recently, live_and_old}
    assert not kept & {*expired_long_ago, revoked_long_ago}
    assert await _ids(pool, "SELECT session_id FROM refresh_tokens") == kept
    # Idempotent: nothing left past retention.
    assert (await _job(pool).sweep_once())["auth_sessions"] == 0


async def test_audit_events_purged_only_past_their_years_and_otherwise_append_only(pool: asyncpg.Pool) -> None:
    old, young = uuid.uuid4(), uuid.uuid4()
    for audit_event_id, age_days in ((old, 2600), (young, 2000)):
        await pool.execute(
            "INSERT INTO audit_events (audit_event_id, organization_id, event_type, details, occurred_at)"
            " VALUES ($1, $2, 'login_succeeded', '{}', $3)",
            audit_event_id,
            PLATFORM_ORG,
            _ago(age_days),
        )
    # Anyone but the retention store still cannot delete or edit the trail.
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_events WHERE audit_event_id = $1", old)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_events SET event_type = 'x' WHERE audit_event_id = $1", young)

    assert (await _job(pool).sweep_once())["auth_audit_events"] == 1
    assert await _ids(pool, "SELECT audit_event_id FROM audit_events") == {young}
    assert (await _job(pool).sweep_once())["auth_audit_events"] == 0


async def test_challenges_counters_and_idempotency_keys_purged_past_retention(pool: asyncpg.Pool) -> None:
    principal_id = await _principal(pool)
    for age_days in (40, 5):
        await pool.execute(
            "INSERT INTO mfa_challenges (mfa_challenge_id, organization_id, principal_id, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            uuid.uuid4(),
            PLATFORM_ORG,
            principal_id,
            _ago(age_days),
        )
        await pool.execute(
            "INSERT INTO passkey_ceremonies (ceremony_id, kind, organization_id, challenge, expires_at)"
            " VALUES ($1, 'authentication', $2, $3, $4)",
            uuid.uuid4(),
            PLATFORM_ORG,
            b"challenge",
            _ago(age_days),
        )
        await pool.execute(
            "INSERT INTO invitations (token_hash, organization_id, principal_id, expires_at) VALUES ($1, $2, $3, $4)",
            uuid.uuid4().bytes,
            PLATFORM_ORG,
            principal_id,
            _ago(age_days),
        )
    await pool.execute(
        "INSERT INTO devices (principal_id, device_id, organization_id, display_name, platform, model, app_version,"
        " key_algorithm, public_key, status, created_at, last_used_at)"
        " VALUES ($1, 'phone-1', $2, 'Phone', 'ios', 'x', '1', 'p256', $3, 'active', $4, $4)",
        principal_id,
        PLATFORM_ORG,
        b"public",
        _ago(400),
    )
    for age_days in (40, 5):
        await pool.execute(
            "INSERT INTO device_challenges (device_challenge_id, organization_id, principal_id, device_id,"
            " bound_method, bound_resource_id, signing_payload, expires_at)"
            " VALUES ($1, $2, $3, 'phone-1', 'm', 'r', $4, $5)",
            uuid.uuid4(),
            PLATFORM_ORG,
            principal_id,
            b"payload",
            _ago(age_days),
        )
    for age_days in (10, 1):
        await pool.execute(
            "INSERT INTO login_failure_counters (counter_key, failures, expires_at) VALUES ($1, 3, $2)",
            uuid.uuid4().bytes,
            _ago(age_days),
        )
    for age_days in (500, 300):
        await pool.execute(
            "INSERT INTO idempotency_keys (organization_id, request_id, operation, target_id, request_digest,"
            " created_at) VALUES ($1, $2, 'op', 't', 'd', $3)",
            PLATFORM_ORG,
            uuid.uuid4(),
            _ago(age_days),
        )

    purged = await _job(pool).sweep_once()
    assert purged["auth_challenges"] == 4  # one each of MFA, passkey, invitation, device
    assert purged["auth_login_attempts"] == 1
    assert purged["auth_idempotency_keys"] == 1
    for table in ("mfa_challenges", "passkey_ceremonies", "invitations", "device_challenges"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 1, table  # noqa: S608 (fixed table names)
    assert await pool.fetchval("SELECT count(*) FROM login_failure_counters") == 1
    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys") == 1
    assert set((await _job(pool).sweep_once()).values()) == {0}


def test_auth_retention_settings_are_bounded() -> None:
    with pytest.raises(ConfigError, match="RETENTION_AUTH_AUDIT_EVENTS_DAYS"):
        load_auth_retention(Env({"RETENTION_AUTH_AUDIT_EVENTS_DAYS": "30"}))
    assert {record.setting for record in AUTH_RECORDS} >= {"RETENTION_AUTH_SESSIONS_DAYS"}


async def test_two_replicas_sweeping_at_once_share_the_backlog_and_purge_each_row_once(pool: asyncpg.Pool) -> None:
    principal_id = await _principal(pool)
    for _ in range(9):
        await _session(pool, principal_id, created_days=400, expires_days=300, revoked_days=None)
    replicas = [_job(pool, batch_rows=2), _job(pool, batch_rows=2)]
    results = await asyncio.gather(*(replica.sweep_once() for replica in replicas))
    # Each row is deleted by one replica only (the other skips or re-checks it), so the counts add up to the rows.
    assert sum(result["auth_sessions"] for result in results) == 9
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0
    assert await pool.fetchval("SELECT count(*) FROM refresh_tokens") == 0
