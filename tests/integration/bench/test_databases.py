import uuid

import asyncpg
import pytest

from bench.databases import fresh_service_database, recreate_database
from devstack.databases import with_database

pytestmark = pytest.mark.integration


async def test_fresh_service_database_is_migrated_and_recreated_empty(postgres_server_url: str) -> None:
    name = f"bench_test_{uuid.uuid4().hex[:8]}"
    url = with_database(postgres_server_url, name)
    try:
        await fresh_service_database(postgres_server_url, url, name, "risk")
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM schema_migrations") >= 1
            await connection.execute("CREATE TABLE leftover (id int)")
        finally:
            await connection.close()
        await recreate_database(postgres_server_url, name)
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT to_regclass('leftover')") is None
        finally:
            await connection.close()
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
