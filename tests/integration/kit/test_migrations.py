import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.kit.migrations import MigrationError, apply_migrations, load_migrations

pytestmark = pytest.mark.integration


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def _table_names(connection: asyncpg.Connection) -> set[str]:
    rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(row["tablename"]) for row in rows}


async def test_applies_in_order_and_is_idempotent(database_url: str, tmp_path: Path) -> None:
    directory = _write(
        tmp_path / "m",
        {"0001_first.sql": "CREATE TABLE a (id int);", "0002_second.sql": "ALTER TABLE a ADD COLUMN b text;"},
    )
    connection = await asyncpg.connect(database_url)
    try:
        assert await apply_migrations(connection, directory, "svc") == [1, 2]
        assert await apply_migrations(connection, directory, "svc") == []
        assert {"a", "schema_migrations"} <= await _table_names(connection)
    finally:
        await connection.close()


async def test_concurrent_runners_apply_each_migration_once(database_url: str, tmp_path: Path) -> None:
    # The sleep widens the race window: without the advisory lock both runners would try version 1.
    directory = _write(
        tmp_path / "m",
        {
            "0001_slow.sql": "SELECT pg_sleep(0.3); CREATE TABLE once (id int);",
            "0002_more.sql": "CREATE TABLE b ();",
        },
    )
    connections = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, directory, "svc") for c in connections))
        assert sorted(v for applied in results for v in applied) == [1, 2]
        rows = await connections[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in rows] == [1, 2]
    finally:
        for connection in connections:
            await connection.close()


async def test_failed_migration_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    directory = _write(
        tmp_path / "m",
        {
            "0001_ok.sql": "CREATE TABLE ok (id int);",
            "0002_bad.sql": "CREATE TABLE half (id int); SELECT nope;",
        },
    )
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedColumnError):
            await apply_migrations(connection, directory, "svc")
        tables = await _table_names(connection)
        assert "ok" in tables
        assert "half" not in tables
        versions = await connection.fetch("SELECT version FROM schema_migrations")
        assert [row["version"] for row in versions] == [1]
        # The advisory lock was released: a fixed migration applies.
        (directory / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
        assert await apply_migrations(connection, directory, "svc") == [2]
    finally:
        await connection.close()


async def test_edited_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {"0001_first.sql": "CREATE TABLE a (id int);"})
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection, directory, "svc")
        (directory / "0001_first.sql").write_text("CREATE TABLE a (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(connection, directory, "svc")
    finally:
        await connection.close()


def test_bad_file_names_and_gaps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(_write(tmp_path / "a", {"1_x.sql": ""}))
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(_write(tmp_path / "b", {"0001_a.sql": "", "0003_c.sql": ""}))


def test_every_service_migrations_folder_loads() -> None:
    root = Path(__file__).resolve().parents[3] / "services"
    for service in ("auth", "ledger", "contacts", "risk"):
        assert load_migrations(root / service / "migrations"), service
