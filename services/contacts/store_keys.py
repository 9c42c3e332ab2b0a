"""SQL of key jobs: the job rows, and the batches a rewrap or reindex moves to the new key version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.contacts.domain import Contact, KeyRotationInProgress
from services.contacts.domain_keys import KeyJob, KeyJobKind, KeyJobState
from services.contacts.store_rows import contact_from_row as _contact
from services.contacts.store_secrets import SigningKeyRecord


def _job(row: asyncpg.Record) -> KeyJob:
    return KeyJob(
        key_job_id=row["key_job_id"],
        request_id=row["request_id"],
        kind=KeyJobKind(row["kind"]),
        state=KeyJobState(row["state"]),
        from_key_version=row["from_key_version"],
        to_key_version=row["to_key_version"],
        items_total=row["items_total"],
        items_done=row["items_done"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        error=row["error"],
    )


_MAKE_CURRENT_SQL = {
    KeyJobKind.KEK_REWRAP: "UPDATE vault_state SET current_kek_version = $1",
    KeyJobKind.BLIND_INDEX_REINDEX: "UPDATE vault_state SET current_blind_index_version = $1",
}


class KeyStatements:
    connection: asyncpg.Connection

    async def job_by_request(self, request_id: UUID) -> KeyJob | None:
        row = await self.connection.fetchrow("SELECT * FROM key_job WHERE request_id = $1", request_id)
        return None if row is None else _job(row)

    async def job(self, kind: KeyJobKind, key_job_id: UUID | None) -> KeyJob | None:
        row = await self.connection.fetchrow(
            """SELECT * FROM key_job WHERE kind = $1 AND ($2::uuid IS NULL OR key_job_id = $2)
               ORDER BY started_at DESC LIMIT 1""",
            int(kind),
            key_job_id,
        )
        return None if row is None else _job(row)

    async def running_job(self) -> KeyJob | None:
        row = await self.connection.fetchrow(
            "SELECT * FROM key_job WHERE state = $1 FOR UPDATE", int(KeyJobState.RUNNING)
        )
        return None if row is None else _job(row)

    async def count_items(self, kind: KeyJobKind, to_version: int) -> int:
        if kind is KeyJobKind.KEK_REWRAP:
            sql = "SELECT count(*) FROM data_key WHERE wrapped_key IS NOT NULL AND kek_version < $1"
        else:
            sql = "SELECT count(*) FROM contact WHERE deleted_at IS NULL AND blind_index_version < $1"
        return int(await self.connection.fetchval(sql, to_version))

    async def start_job(self, job: KeyJob) -> None:
        """Inserts the running job and makes its version current; KEY_ROTATION_IN_PROGRESS if one runs."""
        try:
            await self.connection.execute(
                """INSERT INTO key_job (key_job_id, request_id, kind, state, from_key_version, to_key_version,
                       items_total, items_done, started_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)""",
                job.key_job_id,
                job.request_id,
                int(job.kind),
                int(job.state),
                job.from_key_version,
                job.to_key_version,
                job.items_total,
                job.started_at,
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "key_job_one_running":
                raise KeyRotationInProgress() from None
            raise
        await self.connection.execute(_MAKE_CURRENT_SQL[job.kind], job.to_key_version)

    async def resume_job(self, key_job_id: UUID, now: datetime) -> None:
        try:
            await self.connection.execute(
                "UPDATE key_job SET state = $2, error = '', updated_at = $3, finished_at = NULL WHERE key_job_id = $1",
                key_job_id,
                int(KeyJobState.RUNNING),
                now,
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "key_job_one_running":
                raise KeyRotationInProgress() from None
            raise

    async def record_progress(self, key_job_id: UUID, done: int, now: datetime) -> None:
        await self.connection.execute(
            "UPDATE key_job SET items_done = items_done + $2, updated_at = $3 WHERE key_job_id = $1",
            key_job_id,
            done,
            now,
        )

    async def finish_job(self, key_job_id: UUID, state: KeyJobState, error: str, now: datetime) -> None:
        await self.connection.execute(
            "UPDATE key_job SET state = $2, error = $3, updated_at = $4, finished_at = $4 WHERE key_job_id = $1",
            key_job_id,
            int(state),
            error,
            now,
        )

    # --- batches ---

    async def data_keys_to_rewrap(self, to_version: int, limit: int) -> list[tuple[UUID, UUID, int, bytes]]:
        rows = await self.connection.fetch(
            """SELECT organization_id, customer_id, kek_version, wrapped_key FROM data_key
               WHERE wrapped_key IS NOT NULL AND kek_version < $1
               ORDER BY organization_id, customer_id LIMIT $2 FOR UPDATE SKIP LOCKED""",
            to_version,
            limit,
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def store_rewrapped(self, rows: Sequence[tuple[UUID, UUID, int, bytes]]) -> None:
        await self.connection.executemany(
            """UPDATE data_key SET kek_version = $3, wrapped_key = $4
               WHERE organization_id = $1 AND customer_id = $2 AND wrapped_key IS NOT NULL""",
            rows,
        )

    async def signing_keys_to_rewrap(self, to_version: int) -> list[SigningKeyRecord]:
        rows = await self.connection.fetch(
            """SELECT signing_key_id, kek_version, wrapped_private_key, public_key FROM signing_key
               WHERE kek_version < $1 FOR UPDATE""",
            to_version,
        )
        return [SigningKeyRecord(*row.values()) for row in rows]

    async def store_rewrapped_signing_key(self, record: SigningKeyRecord) -> None:
        await self.connection.execute(
            "UPDATE signing_key SET kek_version = $2, wrapped_private_key = $3 WHERE signing_key_id = $1",
            record.signing_key_id,
            record.kek_version,
            record.wrapped_private_key,
        )

    async def contacts_to_reindex(self, to_version: int, limit: int) -> list[Contact]:
        rows = await self.connection.fetch(
            """SELECT * FROM contact WHERE deleted_at IS NULL AND blind_index_version < $1
               ORDER BY organization_id, contact_id LIMIT $2 FOR UPDATE SKIP LOCKED""",
            to_version,
            limit,
        )
        return [_contact(row) for row in rows]

    async def store_reindexed(self, rows: Sequence[tuple[UUID, UUID, bytes, int]]) -> None:
        await self.connection.executemany(
            """UPDATE contact SET blind_index = $3, blind_index_version = $4
               WHERE organization_id = $1 AND contact_id = $2""",
            rows,
        )

    # --- start-up key check ---

    async def one_data_key_per_kek_version(self) -> list[tuple[UUID, UUID, int, bytes]]:
        rows = await self.connection.fetch(
            """SELECT DISTINCT ON (kek_version) organization_id, customer_id, kek_version, wrapped_key FROM data_key
               WHERE wrapped_key IS NOT NULL ORDER BY kek_version, organization_id, customer_id"""
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def one_contact_per_blind_index_version(self) -> list[tuple[Contact, bytes]]:
        rows = await self.connection.fetch(
            """SELECT DISTINCT ON (blind_index_version) * FROM contact WHERE deleted_at IS NULL
               ORDER BY blind_index_version, organization_id, contact_id"""
        )
        return [(_contact(row), row["blind_index"]) for row in rows]
