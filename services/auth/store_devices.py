"""SQL for trusted devices and their step-up challenges."""

# Only constant column lists are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid

import asyncpg

from services.auth.domain_devices import STATUS_ACTIVE, STATUS_REVOKED, Device, DeviceChallenge, DeviceOperation
from services.auth.store_rows import seconds, seconds_or_none, ts

# Expired rows deleted per insert: more than one, so the sweep outpaces creation.
EXPIRED_SWEEP_BATCH = 20
_DEVICE_COLUMNS = """principal_id, device_id, organization_id, display_name, platform, model, app_version,
    key_algorithm, public_key, status, created_at, last_used_at, revoked_at"""
_CHALLENGE_COLUMNS = """device_challenge_id, organization_id, principal_id, device_id, session_id, bound_method,
    bound_resource_id, amount_currency, amount_minor, signing_payload, expires_at, used_at"""


def _device(row: asyncpg.Record) -> Device:
    return Device(
        principal_id=str(row["principal_id"]),
        organization_id=str(row["organization_id"]),
        device_id=row["device_id"],
        display_name=row["display_name"],
        platform=row["platform"],
        model=row["model"],
        app_version=row["app_version"],
        key_algorithm=row["key_algorithm"],
        public_key=bytes(row["public_key"]),
        status=row["status"],
        created_at=seconds(row["created_at"]),
        last_used_at=seconds(row["last_used_at"]),
        revoked_at=seconds_or_none(row["revoked_at"]),
    )


def _challenge(row: asyncpg.Record) -> DeviceChallenge:
    return DeviceChallenge(
        device_challenge_id=str(row["device_challenge_id"]),
        organization_id=str(row["organization_id"]),
        principal_id=str(row["principal_id"]),
        device_id=row["device_id"],
        session_id=None if row["session_id"] is None else str(row["session_id"]),
        operation=DeviceOperation(
            method=row["bound_method"],
            resource_id=row["bound_resource_id"],
            amount_currency=row["amount_currency"],
            amount_minor=row["amount_minor"],
        ),
        signing_payload=bytes(row["signing_payload"]),
        expires_at=seconds(row["expires_at"]),
        used_at=seconds_or_none(row["used_at"]),
    )


class DeviceQueries:
    _connection: asyncpg.Connection

    async def insert_device(self, device: Device) -> None:
        await self._connection.execute(
            f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "NULL)",
            uuid.UUID(device.principal_id),
            device.device_id,
            uuid.UUID(device.organization_id),
            device.display_name,
            device.platform,
            device.model,
            device.app_version,
            device.key_algorithm,
            device.public_key,
            device.status,
            ts(device.created_at),
            ts(device.last_used_at),
        )

    async def get_device(self, principal_id: str, device_id: str, *, for_update: bool = False) -> Device | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE principal_id = $1 AND device_id = $2{lock}",
            uuid.UUID(principal_id),
            device_id,
        )
        return None if row is None else _device(row)

    async def count_active_devices(self, principal_id: str) -> int:
        count = await self._connection.fetchval(
            "SELECT count(*) FROM devices WHERE principal_id = $1 AND status = $2",
            uuid.UUID(principal_id),
            STATUS_ACTIVE,
        )
        return int(count)

    async def list_devices(
        self, principal_id: str, include_revoked: bool, after: tuple[float, str] | None, limit: int
    ) -> list[Device]:
        """Most recently used first (keyset on (last_used_at, device_id) descending)."""
        rows = await self._connection.fetch(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE principal_id = $1 AND ($2 OR status = 'active') "
            "AND ($3::timestamptz IS NULL OR (last_used_at, device_id) < ($3, $4::text)) "
            "ORDER BY last_used_at DESC, device_id DESC LIMIT $5",
            uuid.UUID(principal_id),
            include_revoked,
            None if after is None else ts(after[0]),
            None if after is None else after[1],
            limit,
        )
        return [_device(row) for row in rows]

    async def rename_device(self, principal_id: str, device_id: str, display_name: str) -> None:
        await self._connection.execute(
            "UPDATE devices SET display_name = $3 WHERE principal_id = $1 AND device_id = $2",
            uuid.UUID(principal_id),
            device_id,
            display_name,
        )

    async def touch_device(self, principal_id: str, device_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE devices SET last_used_at = greatest(last_used_at, $3) WHERE principal_id = $1 AND device_id = $2",
            uuid.UUID(principal_id),
            device_id,
            ts(now_s),
        )

    async def revoke_devices(self, principal_id: str, device_id: str | None, now_s: float) -> list[str]:
        """Revokes one active device (or all of them when ``device_id`` is None); returns the ids revoked."""
        rows = await self._connection.fetch(
            "UPDATE devices SET status = $3, revoked_at = $4 WHERE principal_id = $1 AND status = 'active' "
            "AND ($2::text IS NULL OR device_id = $2) RETURNING device_id",
            uuid.UUID(principal_id),
            device_id,
            STATUS_REVOKED,
            ts(now_s),
        )
        return [row[0] for row in rows]

    async def revoke_device_sessions(self, principal_id: str, device_id: str, cause: str, now_s: float) -> list[str]:
        rows = await self._connection.fetch(
            "UPDATE sessions SET revoked_at = $4, revoke_cause = $3 WHERE principal_id = $1 AND device_id = $2 "
            "AND revoked_at IS NULL RETURNING session_id",
            uuid.UUID(principal_id),
            device_id,
            cause,
            ts(now_s),
        )
        return [str(row[0]) for row in rows]

    async def revoke_sessions_with_method(
        self, principal_id: str, amr_method: str, cause: str, now_s: float
    ) -> list[str]:
        """Revokes the principal's live sessions whose sign-in used ``amr_method`` (e.g. ``hwk``: a passkey)."""
        rows = await self._connection.fetch(
            "UPDATE sessions SET revoked_at = $4, revoke_cause = $3 WHERE principal_id = $1 "
            "AND amr @> ARRAY[$2::text] AND revoked_at IS NULL RETURNING session_id",
            uuid.UUID(principal_id),
            amr_method,
            cause,
            ts(now_s),
        )
        return [str(row[0]) for row in rows]

    # --- challenges -------------------------------------------------------------------------------------------

    async def insert_device_challenge(self, challenge: DeviceChallenge, *, sweep_before_s: float) -> None:
        """Inserts the challenge and deletes a few long-expired ones (every insert sweeps: the table stays bounded
        by the creation rate without a background job)."""
        await self._connection.execute(
            "DELETE FROM device_challenges WHERE device_challenge_id IN (SELECT device_challenge_id "
            "FROM device_challenges WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
            ts(sweep_before_s),
            EXPIRED_SWEEP_BATCH,
        )
        await self._connection.execute(
            f"INSERT INTO device_challenges ({_CHALLENGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
            "$11, NULL)",
            uuid.UUID(challenge.device_challenge_id),
            uuid.UUID(challenge.organization_id),
            uuid.UUID(challenge.principal_id),
            challenge.device_id,
            None if challenge.session_id is None else uuid.UUID(challenge.session_id),
            challenge.operation.method,
            challenge.operation.resource_id,
            challenge.operation.amount_currency,
            challenge.operation.amount_minor,
            challenge.signing_payload,
            ts(challenge.expires_at),
        )

    async def lock_device_challenge(self, device_challenge_id: str) -> DeviceChallenge | None:
        row = await self._connection.fetchrow(
            f"SELECT {_CHALLENGE_COLUMNS} FROM device_challenges WHERE device_challenge_id = $1 FOR UPDATE",
            uuid.UUID(device_challenge_id),
        )
        return None if row is None else _challenge(row)

    async def use_device_challenge(self, device_challenge_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE device_challenges SET used_at = $2 WHERE device_challenge_id = $1 AND used_at IS NULL",
            uuid.UUID(device_challenge_id),
            ts(now_s),
        )
