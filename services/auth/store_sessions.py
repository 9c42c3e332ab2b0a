"""SQL for sessions (refresh-token families), refresh tokens and MFA challenges."""

# Only constant column lists and fixed ORDER BY clauses are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid

import asyncpg

from services.auth.domain_records import MfaChallenge, RefreshToken, Session
from services.auth.store_rows import seconds, seconds_or_none, ts

_SESSION_COLUMNS = """session_id, organization_id, principal_id, kind, device_id, amr, enrolment_only, user_agent,
    source_ip, auth_time, created_at, last_used_at, expires_at, revoked_at"""


def _session(row: asyncpg.Record) -> Session:
    return Session(
        session_id=str(row["session_id"]),
        organization_id=str(row["organization_id"]),
        principal_id=str(row["principal_id"]),
        kind=row["kind"],
        device_id=row["device_id"],
        amr=tuple(row["amr"]),
        enrolment_only=row["enrolment_only"],
        user_agent=row["user_agent"],
        source_ip=row["source_ip"],
        auth_time=seconds(row["auth_time"]),
        created_at=seconds(row["created_at"]),
        last_used_at=seconds(row["last_used_at"]),
        expires_at=seconds(row["expires_at"]),
        revoked_at=seconds_or_none(row["revoked_at"]),
    )


class SessionQueries:
    _connection: asyncpg.Connection

    async def insert_session(self, session: Session) -> None:
        await self._connection.execute(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "$13, NULL)",
            uuid.UUID(session.session_id),
            uuid.UUID(session.organization_id),
            uuid.UUID(session.principal_id),
            session.kind,
            session.device_id,
            list(session.amr),
            session.enrolment_only,
            session.user_agent,
            session.source_ip,
            ts(session.auth_time),
            ts(session.created_at),
            ts(session.last_used_at),
            ts(session.expires_at),
        )

    async def device_seen(self, principal_id: str, device_id: str) -> bool:
        """Whether any session of the principal was opened from this device id before. Takes a transaction-scoped
        advisory lock on (principal, device) first, so two concurrent first sign-ins from one device queue: the
        second sees the first's session once it commits, and the new-device event is raised exactly once."""
        await self._connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('auth.device_seen:' || $1::text || ':' || $2, 0))",
            principal_id,
            device_id,
        )
        seen = await self._connection.fetchval(
            "SELECT 1 FROM sessions WHERE principal_id = $1 AND device_id = $2 LIMIT 1",
            uuid.UUID(principal_id),
            device_id,
        )
        return seen is not None

    async def get_session(self, session_id: str, *, for_update: bool = False) -> Session | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1{lock}", uuid.UUID(session_id)
        )
        return None if row is None else _session(row)

    async def list_sessions(
        self, organization_id: str, principal_id: str, now_s: float, after: tuple[float, str] | None, limit: int
    ) -> list[Session]:
        """Live sessions, most recently used first (keyset on (last_used_at, session_id) descending)."""
        rows = await self._connection.fetch(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE organization_id = $1 AND principal_id = $2 "
            "AND revoked_at IS NULL AND expires_at > $3 "
            "AND ($4::timestamptz IS NULL OR (last_used_at, session_id) < ($4, $5::uuid)) "
            "ORDER BY last_used_at DESC, session_id DESC LIMIT $6",
            uuid.UUID(organization_id),
            uuid.UUID(principal_id),
            ts(now_s),
            None if after is None else ts(after[0]),
            None if after is None else uuid.UUID(after[1]),
            limit,
        )
        return [_session(row) for row in rows]

    async def update_session(self, session_id: str, *, amr: tuple[str, ...], enrolment_only: bool) -> None:
        await self._connection.execute(
            "UPDATE sessions SET amr = $2, enrolment_only = $3 WHERE session_id = $1",
            uuid.UUID(session_id),
            list(amr),
            enrolment_only,
        )

    async def touch_session(self, session_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE sessions SET last_used_at = $2 WHERE session_id = $1", uuid.UUID(session_id), ts(now_s)
        )

    async def revoke_session(self, session_id: str, cause: str, now_s: float) -> bool:
        revoked = await self._connection.fetchval(
            "UPDATE sessions SET revoked_at = $3, revoke_cause = $2 WHERE session_id = $1 AND revoked_at IS NULL "
            "RETURNING 1",
            uuid.UUID(session_id),
            cause,
            ts(now_s),
        )
        return revoked is not None

    async def revoke_sessions_of(
        self, principal_id: str, cause: str, now_s: float, *, except_session_id: str | None = None
    ) -> list[str]:
        rows = await self._connection.fetch(
            "UPDATE sessions SET revoked_at = $3, revoke_cause = $2 WHERE principal_id = $1 AND revoked_at IS NULL "
            "AND ($4::uuid IS NULL OR session_id <> $4) RETURNING session_id",
            uuid.UUID(principal_id),
            cause,
            ts(now_s),
            None if except_session_id is None else uuid.UUID(except_session_id),
        )
        return [str(row[0]) for row in rows]

    # --- refresh tokens ---------------------------------------------------------------------------------------

    async def insert_refresh_token(self, token_hash: bytes, session_id: str, now_s: float) -> None:
        await self._connection.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
            token_hash,
            uuid.UUID(session_id),
            ts(now_s),
        )

    async def lock_refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        """The token's row, locked: concurrent refreshes of one token queue here and see each other's rotation."""
        row = await self._connection.fetchrow(
            "SELECT token_hash, session_id, rotated_at, successor_hash FROM refresh_tokens WHERE token_hash = $1 "
            "FOR UPDATE",
            token_hash,
        )
        if row is None:
            return None
        return RefreshToken(bytes(row[0]), str(row[1]), seconds_or_none(row[2]), row[3] and bytes(row[3]))

    async def refresh_token_rotated(self, token_hash: bytes) -> bool:
        rotated = await self._connection.fetchval(
            "SELECT rotated_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1", token_hash
        )
        return bool(rotated)

    async def mark_rotated(self, token_hash: bytes, successor_hash: bytes, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE refresh_tokens SET rotated_at = $3, successor_hash = $2 WHERE token_hash = $1",
            token_hash,
            successor_hash,
            ts(now_s),
        )

    # --- MFA challenges ---------------------------------------------------------------------------------------

    async def insert_challenge(self, challenge: MfaChallenge) -> None:
        await self._connection.execute(
            "INSERT INTO mfa_challenges (mfa_challenge_id, organization_id, principal_id, device_id, user_agent, "
            "source_ip, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            uuid.UUID(challenge.mfa_challenge_id),
            uuid.UUID(challenge.organization_id),
            uuid.UUID(challenge.principal_id),
            challenge.device_id,
            challenge.user_agent,
            challenge.source_ip,
            ts(challenge.expires_at),
        )

    async def lock_challenge(self, mfa_challenge_id: str) -> MfaChallenge | None:
        row = await self._connection.fetchrow(
            "SELECT * FROM mfa_challenges WHERE mfa_challenge_id = $1 FOR UPDATE", uuid.UUID(mfa_challenge_id)
        )
        if row is None:
            return None
        return MfaChallenge(
            mfa_challenge_id=str(row["mfa_challenge_id"]),
            organization_id=str(row["organization_id"]),
            principal_id=str(row["principal_id"]),
            device_id=row["device_id"],
            user_agent=row["user_agent"],
            source_ip=row["source_ip"],
            expires_at=seconds(row["expires_at"]),
            failed_attempts=row["failed_attempts"],
            used_at=seconds_or_none(row["used_at"]),
        )

    async def finish_challenge(self, mfa_challenge_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE mfa_challenges SET used_at = $2 WHERE mfa_challenge_id = $1",
            uuid.UUID(mfa_challenge_id),
            ts(now_s),
        )

    async def fail_challenge(self, mfa_challenge_id: str) -> None:
        await self._connection.execute(
            "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE mfa_challenge_id = $1",
            uuid.UUID(mfa_challenge_id),
        )
