"""SQL for WebAuthn passkeys and their ceremonies."""

# Only constant column lists are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid

import asyncpg

from services.auth.domain_passkeys import Passkey, PasskeyCeremony
from services.auth.store_devices import EXPIRED_SWEEP_BATCH
from services.auth.store_rows import seconds, seconds_or_none, ts

_PASSKEY_COLUMNS = """passkey_id, organization_id, principal_id, credential_id, public_key, sign_count, aaguid,
    backup_eligible, backed_up, display_name, created_at, last_used_at"""


def _passkey(row: asyncpg.Record) -> Passkey:
    return Passkey(
        passkey_id=str(row["passkey_id"]),
        organization_id=str(row["organization_id"]),
        principal_id=str(row["principal_id"]),
        credential_id=bytes(row["credential_id"]),
        public_key=bytes(row["public_key"]),
        sign_count=row["sign_count"],
        aaguid=row["aaguid"],
        backup_eligible=row["backup_eligible"],
        backed_up=row["backed_up"],
        display_name=row["display_name"],
        created_at=seconds(row["created_at"]),
        last_used_at=seconds_or_none(row["last_used_at"]),
    )


class PasskeyQueries:
    _connection: asyncpg.Connection

    async def insert_passkey(self, passkey: Passkey) -> bool:
        """False when the credential id is already registered (to anyone)."""
        inserted = await self._connection.fetchval(
            f"INSERT INTO passkeys ({_PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL) "
            "ON CONFLICT (credential_id) DO NOTHING RETURNING 1",
            uuid.UUID(passkey.passkey_id),
            uuid.UUID(passkey.organization_id),
            uuid.UUID(passkey.principal_id),
            passkey.credential_id,
            passkey.public_key,
            passkey.sign_count,
            passkey.aaguid,
            passkey.backup_eligible,
            passkey.backed_up,
            passkey.display_name,
            ts(passkey.created_at),
        )
        return inserted is not None

    async def passkey_by_credential(self, credential_id: bytes, *, for_update: bool = False) -> Passkey | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1 AND deleted_at IS NULL{lock}",
            credential_id,
        )
        return None if row is None else _passkey(row)

    async def get_passkey(self, principal_id: str, passkey_id: str, *, for_update: bool = False) -> Passkey | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_PASSKEY_COLUMNS} FROM passkeys WHERE principal_id = $1 AND passkey_id = $2{lock}",
            uuid.UUID(principal_id),
            uuid.UUID(passkey_id),
        )
        return None if row is None else _passkey(row)

    async def list_passkeys(self, principal_id: str, after: tuple[float, str] | None, limit: int) -> list[Passkey]:
        """Newest first (keyset on (created_at, passkey_id) descending)."""
        rows = await self._connection.fetch(
            f"SELECT {_PASSKEY_COLUMNS} FROM passkeys WHERE principal_id = $1 AND deleted_at IS NULL "
            "AND ($2::timestamptz IS NULL OR (created_at, passkey_id) < ($2, $3::uuid)) "
            "ORDER BY created_at DESC, passkey_id DESC LIMIT $4",
            uuid.UUID(principal_id),
            None if after is None else ts(after[0]),
            None if after is None else uuid.UUID(after[1]),
            limit,
        )
        return [_passkey(row) for row in rows]

    async def count_passkeys(self, principal_id: str) -> int:
        count = await self._connection.fetchval(
            "SELECT count(*) FROM passkeys WHERE principal_id = $1 AND deleted_at IS NULL", uuid.UUID(principal_id)
        )
        return int(count)

    async def record_passkey_use(self, passkey_id: str, sign_count: int, backed_up: bool, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE passkeys SET sign_count = $2, backed_up = $3, last_used_at = $4 WHERE passkey_id = $1",
            uuid.UUID(passkey_id),
            sign_count,
            backed_up,
            ts(now_s),
        )

    async def delete_principal_passkeys(self, principal_id: str, now_s: float) -> list[str]:
        """Soft-deletes every passkey of the principal (an admin's reset); returns the ids deleted."""
        rows = await self._connection.fetch(
            "UPDATE passkeys SET deleted_at = $2 WHERE principal_id = $1 AND deleted_at IS NULL RETURNING passkey_id",
            uuid.UUID(principal_id),
            ts(now_s),
        )
        return [str(row[0]) for row in rows]

    async def delete_passkey(self, passkey_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE passkeys SET deleted_at = $2 WHERE passkey_id = $1 AND deleted_at IS NULL",
            uuid.UUID(passkey_id),
            ts(now_s),
        )

    # --- ceremonies -------------------------------------------------------------------------------------------

    async def insert_ceremony(self, ceremony: PasskeyCeremony, *, sweep_before_s: float) -> None:
        """Inserts the ceremony and deletes a few long-expired ones (anonymous callers can start ceremonies, so
        every insert sweeps and the table stays bounded by the creation rate)."""
        await self._connection.execute(
            "DELETE FROM passkey_ceremonies WHERE ceremony_id IN (SELECT ceremony_id FROM passkey_ceremonies "
            "WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            ts(sweep_before_s),
            EXPIRED_SWEEP_BATCH,
        )
        await self._connection.execute(
            "INSERT INTO passkey_ceremonies (ceremony_id, kind, organization_id, principal_id, challenge, "
            "expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            uuid.UUID(ceremony.ceremony_id),
            ceremony.kind,
            uuid.UUID(ceremony.organization_id),
            None if ceremony.principal_id is None else uuid.UUID(ceremony.principal_id),
            ceremony.challenge,
            ts(ceremony.expires_at),
        )

    async def use_ceremony(self, ceremony_id: str, now_s: float) -> PasskeyCeremony | None:
        """Locks the ceremony and marks it used (single use whatever follows); returns it as it was before."""
        row = await self._connection.fetchrow(
            "SELECT ceremony_id, kind, organization_id, principal_id, challenge, expires_at, used_at "
            "FROM passkey_ceremonies WHERE ceremony_id = $1 FOR UPDATE",
            uuid.UUID(ceremony_id),
        )
        if row is None:
            return None
        if row["used_at"] is None:
            await self._connection.execute(
                "UPDATE passkey_ceremonies SET used_at = $2 WHERE ceremony_id = $1", uuid.UUID(ceremony_id), ts(now_s)
            )
        return PasskeyCeremony(
            ceremony_id=str(row["ceremony_id"]),
            kind=row["kind"],
            organization_id=str(row["organization_id"]),
            principal_id=None if row["principal_id"] is None else str(row["principal_id"]),
            challenge=bytes(row["challenge"]),
            expires_at=seconds(row["expires_at"]),
            used_at=seconds_or_none(row["used_at"]),
        )
