"""Numbered SQL migrations, applied in order under a Postgres advisory lock and recorded in a table.

Files are ``NNNN_name.sql`` in a service's ``migrations/`` folder. Each runs in its own transaction with its record,
so a failed migration leaves nothing half-applied. Two processes racing (two pods starting, or the migrate Job and a
developer) serialize on the advisory lock; the second finds everything applied and does nothing. An applied file
whose content changed is an error: migrations are append-only.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations folder or the recorded history is inconsistent."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return migrations


def advisory_lock_key(scope: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` derived from the scope name."""
    digest = hashlib.sha256(f"wallet-migrations:{scope}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def apply_migrations(connection: asyncpg.Connection, directory: Path, scope: str) -> list[int]:
    """Applies pending migrations; returns the versions applied by this call."""
    migrations = load_migrations(directory)
    lock_key = advisory_lock_key(scope)
    await connection.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"""
        )
        rows = await connection.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
        applied = {int(row["version"]): str(row["checksum"]) for row in rows}
        newly_applied: list[int] = []
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} changed after it was applied"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration", extra={"fields": {"version": migration.version, "name": migration.name}})
            newly_applied.append(migration.version)
        unknown = sorted(set(applied) - {m.version for m in migrations})
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
        return newly_applied
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", lock_key)
