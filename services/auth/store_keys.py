"""SQL for token-signing keys (private halves sealed by the service before they get here)."""

# Only constant column lists and fixed ORDER BY clauses are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid

import asyncpg

from services.auth.domain_records import SigningKeyRecord
from services.auth.store_rows import seconds, seconds_or_none, ts

_KEY_COLUMNS = "key_id, status, public_x, private_key_sealed, created_at, retiring_at, retired_at"


def _key(row: asyncpg.Record) -> SigningKeyRecord:
    return SigningKeyRecord(
        key_id=row["key_id"],
        status=row["status"],
        public_x=row["public_x"],
        private_key_sealed=bytes(row["private_key_sealed"]),
        created_at=seconds(row["created_at"]),
        retiring_at=seconds_or_none(row["retiring_at"]),
        retired_at=seconds_or_none(row["retired_at"]),
    )


class KeyQueries:
    _connection: asyncpg.Connection

    async def lock_signing_keys(self) -> None:
        """Serializes key creation and rotation across replicas (transaction-scoped advisory lock)."""
        await self._connection.execute("SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))")

    async def active_key(self) -> SigningKeyRecord | None:
        row = await self._connection.fetchrow(f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE status = 'active'")
        return None if row is None else _key(row)

    async def insert_key(self, key: SigningKeyRecord, rotation_request_id: str | None) -> None:
        await self._connection.execute(
            f"INSERT INTO signing_keys ({_KEY_COLUMNS}, rotation_request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            key.key_id,
            key.status,
            key.public_x,
            key.private_key_sealed,
            ts(key.created_at),
            None,
            None,
            None if rotation_request_id is None else uuid.UUID(rotation_request_id),
        )

    async def retire_key(self, key_id: str, now_s: float, retired_at_s: float) -> None:
        await self._connection.execute(
            "UPDATE signing_keys SET status = 'retiring', retiring_at = $2, retired_at = $3 WHERE key_id = $1",
            key_id,
            ts(now_s),
            ts(retired_at_s),
        )

    async def key_by_rotation_request(self, request_id: str) -> SigningKeyRecord | None:
        row = await self._connection.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE rotation_request_id = $1", uuid.UUID(request_id)
        )
        return None if row is None else _key(row)

    async def get_key(self, key_id: str) -> SigningKeyRecord | None:
        row = await self._connection.fetchrow(f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE key_id = $1", key_id)
        return None if row is None else _key(row)

    async def previous_key(self, created_before_s: float) -> SigningKeyRecord | None:
        row = await self._connection.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE created_at < $1 ORDER BY created_at DESC LIMIT 1",
            ts(created_before_s),
        )
        return None if row is None else _key(row)

    async def published_keys(self, now_s: float) -> list[SigningKeyRecord]:
        rows = await self._connection.fetch(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 "
            "ORDER BY created_at DESC",
            ts(now_s),
        )
        return [_key(row) for row in rows]

    async def list_keys(self, after: tuple[float, str] | None, limit: int) -> list[SigningKeyRecord]:
        rows = await self._connection.fetch(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys "
            "WHERE ($1::timestamptz IS NULL OR (created_at, key_id) < ($1, $2)) "
            "ORDER BY created_at DESC, key_id DESC LIMIT $3",
            None if after is None else ts(after[0]),
            "" if after is None else after[1],
            limit,
        )
        return [_key(row) for row in rows]
