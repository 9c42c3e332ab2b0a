"""SQL of the access log: append (lock-free), chain pending entries under the tenant's head row, list, read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.contacts.domain_access_log import GENESIS_HASH, AccessAction, AccessLogEntry, chain_hash


def _entry(row: asyncpg.Record) -> AccessLogEntry:
    return AccessLogEntry(
        organization_id=row["organization_id"],
        access_log_entry_id=row["access_log_entry_id"],
        customer_id=row["customer_id"],
        contact_id=row["contact_id"],
        card_secret_id=row["card_secret_id"],
        action=AccessAction(row["action"]),
        actor_principal_id=row["actor_principal_id"],
        on_behalf_of_principal_id=row["on_behalf_of_principal_id"],
        reveal_purpose=row["reveal_purpose"],
        justification=row["justification"],
        trace_id=row["trace_id"],
        occurred_at=row["occurred_at"],
        sequence=row["sequence"],
        entry_hash=row["entry_hash"],
    )


INSERT_ENTRY_SQL = """INSERT INTO access_log (organization_id, access_log_entry_id, customer_id, contact_id,
    card_secret_id, action, actor_principal_id, on_behalf_of_principal_id, reveal_purpose, justification, trace_id,
    occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"""


def entry_arguments(entry: AccessLogEntry) -> tuple[object, ...]:
    return (
        entry.organization_id,
        entry.access_log_entry_id,
        entry.customer_id,
        entry.contact_id,
        entry.card_secret_id,
        int(entry.action),
        entry.actor_principal_id,
        entry.on_behalf_of_principal_id,
        entry.reveal_purpose,
        entry.justification,
        entry.trace_id,
        entry.occurred_at,
    )


class AccessLogStatements:
    connection: asyncpg.Connection

    async def append_access(self, entry: AccessLogEntry) -> None:
        await self.connection.execute(INSERT_ENTRY_SQL, *entry_arguments(entry))

    async def tenants_with_unchained_entries(self, limit: int) -> list[UUID]:
        rows = await self.connection.fetch(
            "SELECT DISTINCT organization_id FROM access_log WHERE sequence IS NULL LIMIT $1", limit
        )
        return [row["organization_id"] for row in rows]

    async def chain_pending(self, organization_id: UUID, limit: int) -> int:
        """Gives the tenant's unchained entries their sequence and hash, in insertion order; returns how many.
        The head row's lock serialises chainers of one tenant (replicas, the background job, a verify call)."""
        await self.connection.execute(
            """INSERT INTO access_log_head (organization_id, last_sequence, last_hash) VALUES ($1, 0, $2)
               ON CONFLICT DO NOTHING""",
            organization_id,
            GENESIS_HASH,
        )
        head = await self.connection.fetchrow(
            "SELECT last_sequence, last_hash FROM access_log_head WHERE organization_id = $1 FOR UPDATE",
            organization_id,
        )
        assert head is not None
        rows = await self.connection.fetch(
            """SELECT * FROM access_log WHERE organization_id = $1 AND sequence IS NULL
               ORDER BY entry_number LIMIT $2""",
            organization_id,
            limit,
        )
        sequence: int = head["last_sequence"]
        previous: bytes = head["last_hash"]
        updates: list[tuple[UUID, UUID, int, bytes]] = []
        for row in rows:
            sequence += 1
            previous = chain_hash(previous, _entry(row), sequence)
            updates.append((organization_id, row["access_log_entry_id"], sequence, previous))
        if updates:
            await self.connection.executemany(
                """UPDATE access_log SET sequence = $3, entry_hash = $4
                   WHERE organization_id = $1 AND access_log_entry_id = $2""",
                updates,
            )
            await self.connection.execute(
                "UPDATE access_log_head SET last_sequence = $2, last_hash = $3 WHERE organization_id = $1",
                organization_id,
                sequence,
                previous,
            )
        return len(updates)

    async def exported_access_log(self, organization_id: UUID, export_id: UUID) -> str | None:
        """The justification recorded when the access log was first read under ``export_id`` (locked per export, so
        two concurrent first pages record it once); None when it never was."""
        await self.connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))",
            f"contacts.export|{organization_id}|{export_id}",
        )
        recorded: str | None = await self.connection.fetchval(
            """SELECT justification FROM access_log WHERE organization_id = $1 AND action = $2
                  AND justification LIKE $3 ORDER BY entry_number LIMIT 1""",
            organization_id,
            int(AccessAction.ACCESS_LOG_EXPORT),
            f"export_id={export_id};%",
        )
        return recorded

    async def list_access(
        self,
        organization_id: UUID,
        customer_id: UUID | None,
        action: AccessAction | None,
        start_time: datetime | None,
        end_time: datetime | None,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AccessLogEntry]:
        rows = await self.connection.fetch(
            """SELECT * FROM access_log
               WHERE organization_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
                 AND ($3::smallint IS NULL OR action = $3)
                 AND ($4::timestamptz IS NULL OR occurred_at >= $4)
                 AND ($5::timestamptz IS NULL OR occurred_at < $5)
                 AND ($6::timestamptz IS NULL OR (occurred_at, access_log_entry_id) < ($6, $7::uuid))
               ORDER BY occurred_at DESC, access_log_entry_id DESC LIMIT $8""",
            organization_id,
            customer_id,
            None if action is None else int(action),
            start_time,
            end_time,
            None if before is None else before[0],
            None if before is None else before[1],
            limit,
        )
        return [_entry(row) for row in rows]

    async def count_access(self, organization_id: UUID, customer_id: UUID) -> int:
        count = await self.connection.fetchval(
            "SELECT count(*) FROM access_log WHERE organization_id = $1 AND customer_id = $2",
            organization_id,
            customer_id,
        )
        return int(count)

    async def chained_entries(
        self, organization_id: UUID, first_sequence: int, last_sequence: int | None, limit: int
    ) -> tuple[bytes, list[AccessLogEntry]]:
        """The hash before ``first_sequence`` and the chained entries from it, in order."""
        previous = GENESIS_HASH
        if first_sequence > 1:
            stored = await self.connection.fetchval(
                "SELECT entry_hash FROM access_log WHERE organization_id = $1 AND sequence = $2",
                organization_id,
                first_sequence - 1,
            )
            previous = stored if stored is not None else GENESIS_HASH
        rows = await self.connection.fetch(
            """SELECT * FROM access_log WHERE organization_id = $1 AND sequence >= $2
                 AND ($3::bigint IS NULL OR sequence <= $3)
               ORDER BY sequence LIMIT $4""",
            organization_id,
            first_sequence,
            last_sequence,
            limit,
        )
        return previous, [_entry(row) for row in rows]

    async def entries_by_id(self, organization_id: UUID, ids: Sequence[UUID]) -> list[AccessLogEntry]:
        rows = await self.connection.fetch(
            "SELECT * FROM access_log WHERE organization_id = $1 AND access_log_entry_id = ANY($2::uuid[])",
            organization_id,
            list(ids),
        )
        return [_entry(row) for row in rows]
