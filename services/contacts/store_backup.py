"""SQL of backups: dump every vault table as JSON rows, and load them into an empty vault database.

Rows are dumped as they are stored (ciphertexts, wrapped keys, blind indexes, hashes): nothing is decrypted.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from services.contacts.domain_keys import BackupInfo

# Load order respects nothing but itself (there are no foreign keys); vault_state is replaced, not inserted.
BACKUP_TABLES = (
    "data_key",
    "contact",
    "card_secret",
    "idempotent_request",
    "notification",
    "access_log",
    "access_log_head",
    "erasure_receipt",
    "signing_key",
    "key_job",
    "resolve_miss",
)


class BackupStatements:
    connection: asyncpg.Connection

    async def dump_tables(self) -> dict[str, Any]:
        dump: dict[str, Any] = {}
        state = await self.connection.fetchval("SELECT row_to_json(vault_state) FROM vault_state")
        dump["vault_state"] = json.loads(state)
        for table in BACKUP_TABLES:
            rows = await self.connection.fetchval(
                f"SELECT coalesce(json_agg(t), '[]'::json) FROM {table} t"  # noqa: S608 -- table names are constants
            )
            dump[table] = json.loads(rows)
        return dump

    async def vault_is_empty(self) -> bool:
        held = await self.connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM data_key) OR EXISTS (SELECT 1 FROM contact) OR EXISTS (SELECT 1 FROM access_log)"
        )
        return not held

    async def load_tables(self, dump: dict[str, Any]) -> None:
        state = dump["vault_state"]
        await self.connection.execute(
            "UPDATE vault_state SET current_kek_version = $1, current_blind_index_version = $2",
            int(state["current_kek_version"]),
            int(state["current_blind_index_version"]),
        )
        for table in BACKUP_TABLES:
            await self.connection.execute(
                f"""INSERT INTO {table} OVERRIDING SYSTEM VALUE
                    SELECT * FROM json_populate_recordset(NULL::{table}, $1::json)""",  # noqa: S608 -- constant table names
                json.dumps(dump[table]),
            )
        for table, column in (("access_log", "entry_number"), ("resolve_miss", "miss_number")):
            await self.connection.execute(
                f"""SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                       coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"""  # noqa: S608 -- constants
            )

    async def record_backup(self, info: BackupInfo) -> None:
        await self.connection.execute(
            """INSERT INTO backup (backup_id, location, size_bytes, sha256, backup_key_version, contact_count,
                   card_secret_count, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            info.backup_id,
            info.location,
            info.size_bytes,
            info.sha256,
            info.backup_key_version,
            info.contact_count,
            info.card_secret_count,
            info.created_at,
        )

    async def backup_record(self, backup_id: UUID) -> BackupInfo | None:
        row = await self.connection.fetchrow("SELECT * FROM backup WHERE backup_id = $1", backup_id)
        return None if row is None else BackupInfo(*row.values())
