"""What each service's retention tests share: a migrated database's pool, and a job with a chosen round size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from services.kit.migrations import apply_migrations
from services.kit.retention import RetentionJob


@asynccontextmanager
async def migrated_pool(database_url: str, migrations_dir: Path, scope: str) -> AsyncIterator[asyncpg.Pool]:
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection, migrations_dir, scope=scope)
    finally:
        await connection.close()
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert created is not None
    try:
        yield created
    finally:
        await created.close()


def sized(job: RetentionJob, *, batch_rows: int, rounds_max: int) -> RetentionJob:
    """The job with this many rows per round and rounds per sweep (the tests use small ones to see the bounds)."""
    job.batch_rows = batch_rows
    job.rounds_max = rounds_max
    return job
