"""Fresh databases for bench sections: every run starts from an empty database, because tables bloated by an
earlier run would slow this one down."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.kit.migrations import apply_migrations

CONNECT_TIMEOUT_S = 10.0
SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"


async def recreate_database(server_url: str, name: str) -> None:
    """Drops ``name`` (disconnecting whoever still uses it) and creates it empty."""
    assert name.isidentifier(), name
    server = await asyncpg.connect(server_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await server.execute(f"CREATE DATABASE {name}")
    finally:
        await server.close()


async def fresh_service_database(server_url: str, database_url: str, name: str, service: str) -> None:
    """A new, empty ``name`` database with ``service``'s migrations applied, as ``make run`` would leave it."""
    await recreate_database(server_url, name)
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await apply_migrations(database, SERVICES_DIR / service / "migrations", scope=service)
    finally:
        await database.close()
