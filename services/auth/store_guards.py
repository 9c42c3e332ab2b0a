"""SQL for request ids of mutations (idempotency) and the Postgres fallback of the brute-force counters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from services.auth.domain import FailureCounter
from services.auth.store_rows import seconds_or_none, ts, ts_or_none


class GuardQueries:
    _connection: asyncpg.Connection

    # --- idempotency ------------------------------------------------------------------------------------------

    async def claim_request(
        self, organization_id: str, request_id: str, operation: str, target_id: str, digest: str
    ) -> tuple[str, str, str] | None:
        """Records the request id; returns the earlier (operation, target, digest) when it was already used."""
        inserted = await self._connection.fetchval(
            "INSERT INTO idempotency_keys (organization_id, request_id, operation, target_id, request_digest) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            uuid.UUID(organization_id),
            uuid.UUID(request_id),
            operation,
            target_id,
            digest,
        )
        if inserted is not None:
            return None
        row = await self._connection.fetchrow(
            "SELECT operation, target_id, request_digest FROM idempotency_keys "
            "WHERE organization_id = $1 AND request_id = $2",
            uuid.UUID(organization_id),
            uuid.UUID(request_id),
        )
        assert row is not None
        return row[0], row[1], row[2]

    # --- brute-force counters (the copy of Redis's, read as the fallback) -------------------------------------------------

    async def get_failure_counters(self, counter_keys: Sequence[bytes], now_s: float) -> dict[bytes, FailureCounter]:
        rows = await self._connection.fetch(
            "SELECT counter_key, failures, next_allowed_at, locked_until FROM login_failure_counters "
            "WHERE counter_key = ANY($1::bytea[]) AND expires_at > $2",
            list(counter_keys),
            ts(now_s),
        )
        return {
            bytes(row[0]): FailureCounter(row[1], seconds_or_none(row[2]), seconds_or_none(row[3])) for row in rows
        }

    async def put_failure_counter(self, counter_key: bytes, counter: FailureCounter, expires_at_s: float) -> None:
        await self._connection.execute(
            "INSERT INTO login_failure_counters (counter_key, failures, next_allowed_at, locked_until, expires_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (counter_key) DO UPDATE SET failures = $2, "
            "next_allowed_at = $3, locked_until = $4, expires_at = $5",
            counter_key,
            counter.failures,
            ts_or_none(counter.next_allowed_at),
            ts_or_none(counter.locked_until),
            ts(expires_at_s),
        )

    async def delete_failure_counter(self, counter_key: bytes) -> None:
        await self._connection.execute("DELETE FROM login_failure_counters WHERE counter_key = $1", counter_key)
