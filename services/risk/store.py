"""SQL for rule versions, block/allow lists and the audit trail (asyncpg, ``$1`` parameters, keyset pages).

Each public method is one unit of work: it runs in its own transaction, so the service never holds an asyncpg
connection. Rows become domain types here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.kit.db import transaction
from services.risk.domain import (
    ListEntryType,
    ListKind,
    RuleFormat,
    RulesVersionConflict,
    RuleVersion,
)
from services.risk.domain_lists import ListEntry, ListEntryNotFound

# The pool connects after the server starts, so stores are given a way to reach it rather than the pool itself.
PoolSource = Callable[[], asyncpg.Pool]


def to_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def to_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


async def audit(
    connection: asyncpg.Connection,
    organization_id: str,
    action: str,
    subject: str,
    actor: str,
    detail: dict[str, Any],
) -> None:
    await connection.execute(
        "INSERT INTO audit_events (organization_id, action, subject, actor_principal_id, detail)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        uuid.UUID(organization_id),
        action,
        subject,
        actor,
        json.dumps(detail),
    )


async def audit_export_once(
    pool: asyncpg.Pool, organization_id: str, action: str, export_id: uuid.UUID, actor: str, detail: dict[str, str]
) -> dict[str, str] | None:
    """Audits a listing read as a named export once (``action`` on subject ``exports/<id>``, under a lock per export
    id and action): None when this call recorded it, else the detail recorded the first time."""
    subject = f"exports/{export_id}"
    async with transaction(pool) as connection:
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))",
            f"risk.export|{organization_id}|{action}|{subject}",
        )
        recorded = await connection.fetchval(
            "SELECT detail FROM audit_events WHERE organization_id = $1 AND action = $2 AND subject = $3"
            " ORDER BY audit_id LIMIT 1",
            uuid.UUID(organization_id),
            action,
            subject,
        )
        if recorded is not None:
            earlier: dict[str, str] = json.loads(recorded)
            return earlier
        await audit(connection, organization_id, action, subject, actor, dict(detail))
    return None


def _rule_version(row: asyncpg.Record) -> RuleVersion:
    return RuleVersion(
        version=row["version"],
        document=row["document"],
        format=RuleFormat(row["format"]),
        checksum=row["checksum"],
        comment=row["comment"],
        copied_from_version=row["copied_from_version"],
        published_by_principal_id=row["published_by_principal_id"],
        published_at_s=row["published_at"].timestamp(),
        request_id=str(row["request_id"]),
    )


class RuleStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def active_version_number(self, organization_id: str) -> int:
        value = await self._pool.fetchval(
            "SELECT active_version FROM rule_heads WHERE organization_id = $1", uuid.UUID(organization_id)
        )
        return 0 if value is None else int(value)

    async def get(self, organization_id: str, version: int) -> RuleVersion | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM rule_versions WHERE organization_id = $1 AND version = $2",
            uuid.UUID(organization_id),
            version,
        )
        return None if row is None else _rule_version(row)

    async def find_by_request(self, organization_id: str, request_id: str) -> RuleVersion | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM rule_versions WHERE organization_id = $1 AND request_id = $2",
            uuid.UUID(organization_id),
            uuid.UUID(request_id),
        )
        return None if row is None else _rule_version(row)

    async def publish(self, organization_id: str, expected_active_version: int, version: RuleVersion) -> RuleVersion:
        """Stores ``version`` as active_version + 1 if the active version is still the expected one."""
        org = uuid.UUID(organization_id)
        async with transaction(self._pool) as connection:
            await connection.execute(
                "INSERT INTO rule_heads (organization_id, active_version) VALUES ($1, 0) ON CONFLICT DO NOTHING", org
            )
            active = await connection.fetchval(
                "SELECT active_version FROM rule_heads WHERE organization_id = $1 FOR UPDATE", org
            )
            if active != expected_active_version:
                raise RulesVersionConflict(
                    f"version {active} is active, not {expected_active_version}", metadata={"active_version": active}
                )
            row = await connection.fetchrow(
                "INSERT INTO rule_versions (organization_id, version, document, format, checksum, comment,"
                " copied_from_version, published_by_principal_id, request_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                org,
                active + 1,
                version.document,
                version.format.value,
                version.checksum,
                version.comment,
                version.copied_from_version,
                version.published_by_principal_id,
                uuid.UUID(version.request_id),
            )
            await connection.execute(
                "UPDATE rule_heads SET active_version = $2 WHERE organization_id = $1", org, active + 1
            )
            await audit(
                connection,
                organization_id,
                "rules_rolled_back" if version.copied_from_version else "rules_published",
                f"rules/{active + 1}",
                version.published_by_principal_id,
                {"checksum": version.checksum, "copied_from_version": version.copied_from_version},
            )
        return _rule_version(row)

    async def list_versions(self, organization_id: str, before_version: int | None, limit: int) -> list[RuleVersion]:
        rows = await self._pool.fetch(
            "SELECT * FROM rule_versions WHERE organization_id = $1 AND ($2::bigint IS NULL OR version < $2)"
            " ORDER BY version DESC LIMIT $3",
            uuid.UUID(organization_id),
            before_version,
            limit,
        )
        return [_rule_version(row) for row in rows]


def _list_entry(row: asyncpg.Record) -> ListEntry:
    return ListEntry(
        list_entry_id=str(row["list_entry_id"]),
        list_kind=ListKind(row["list_kind"]),
        entry_type=ListEntryType(row["entry_type"]),
        value=row["value"],
        reason=row["reason"],
        expires_at_s=to_seconds(row["expires_at"]),
        created_by_principal_id=row["created_by_principal_id"],
        created_at_s=row["created_at"].timestamp(),
        removed_at_s=to_seconds(row["removed_at"]),
    )


class ListStore:
    def __init__(self, pool: PoolSource) -> None:
        self._pool_source = pool

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_source()

    async def add(self, organization_id: str, entry: ListEntry) -> tuple[ListEntry, bool]:
        """Inserts the entry; returns (stored entry, created). An existing id returns the stored one unchanged."""
        org = uuid.UUID(organization_id)
        async with transaction(self._pool) as connection:
            row = await connection.fetchrow(
                "INSERT INTO list_entries (organization_id, list_entry_id, list_kind, entry_type, value, reason,"
                " expires_at, created_by_principal_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT DO NOTHING RETURNING *",
                org,
                uuid.UUID(entry.list_entry_id),
                entry.list_kind.value,
                entry.entry_type.value,
                entry.value,
                entry.reason,
                to_datetime(entry.expires_at_s),
                entry.created_by_principal_id,
            )
            if row is None:
                existing = await connection.fetchrow(
                    "SELECT * FROM list_entries WHERE organization_id = $1 AND list_entry_id = $2",
                    org,
                    uuid.UUID(entry.list_entry_id),
                )
                assert existing is not None
                return _list_entry(existing), False
            await audit(
                connection,
                organization_id,
                "list_entry_added",
                f"list_entries/{entry.list_entry_id}",
                entry.created_by_principal_id,
                {"list_kind": entry.list_kind.name, "entry_type": entry.entry_type.name, "reason": entry.reason},
            )
        return _list_entry(row), True

    async def remove(self, organization_id: str, list_entry_id: str, request_id: str, actor: str) -> ListEntry:
        org = uuid.UUID(organization_id)
        async with transaction(self._pool) as connection:
            row = await connection.fetchrow(
                "SELECT * FROM list_entries WHERE organization_id = $1 AND list_entry_id = $2 FOR UPDATE",
                org,
                uuid.UUID(list_entry_id),
            )
            if row is None:
                raise ListEntryNotFound("list entry not found")
            if row["removed_at"] is not None:
                # Removing twice is a no-op that answers with the removed entry (idempotent by nature).
                return _list_entry(row)
            row = await connection.fetchrow(
                "UPDATE list_entries SET removed_at = now(), removed_by_principal_id = $3, remove_request_id = $4"
                " WHERE organization_id = $1 AND list_entry_id = $2 RETURNING *",
                org,
                uuid.UUID(list_entry_id),
                actor,
                uuid.UUID(request_id),
            )
            await audit(connection, organization_id, "list_entry_removed", f"list_entries/{list_entry_id}", actor, {})
        return _list_entry(row)

    async def active(self, organization_id: str, limit: int) -> list[ListEntry]:
        rows = await self._pool.fetch(
            "SELECT * FROM list_entries WHERE organization_id = $1 AND removed_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now()) ORDER BY created_at DESC LIMIT $2",
            uuid.UUID(organization_id),
            limit,
        )
        return [_list_entry(row) for row in rows]

    async def page(
        self,
        organization_id: str,
        *,
        list_kind: ListKind | None,
        entry_type: ListEntryType | None,
        value: str,
        include_inactive: bool,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ListEntry]:
        rows = await self._pool.fetch(
            "SELECT * FROM list_entries WHERE organization_id = $1"
            " AND ($2::smallint IS NULL OR list_kind = $2) AND ($3::smallint IS NULL OR entry_type = $3)"
            " AND ($4 = '' OR value = $4)"
            " AND ($5 OR (removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())))"
            " AND ($6::timestamptz IS NULL OR (created_at, list_entry_id) < ($6, $7))"
            " ORDER BY created_at DESC, list_entry_id DESC LIMIT $8",
            uuid.UUID(organization_id),
            None if list_kind is None else list_kind.value,
            None if entry_type is None else entry_type.value,
            value,
            include_inactive,
            None if after is None else after[0],
            None if after is None else after[1],
            limit,
        )
        return [_list_entry(row) for row in rows]
