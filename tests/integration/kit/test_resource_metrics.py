"""The kit's dependency metrics: a pool's connections by state (read at scrape time, closed pools dropped) and
Redis command / pipeline latency by command name."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.kit import db
from services.kit.redis_client import create_redis

pytestmark = pytest.mark.integration


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_pool_connections_are_exported_by_database(database_url: str) -> None:
    database = db.database_name(database_url)
    assert "@" not in database
    assert "/" not in database
    pool = await db.create_pool(database_url, min_size=1, max_size=3, budget_s=5)
    try:
        assert sample("wallet_db_pool_size_max", {"database": database}) == 3
        async with pool.acquire():
            assert sample("wallet_db_pool_connections", {"database": database, "state": "in_use"}) == 1
        assert sample("wallet_db_pool_connections", {"database": database, "state": "in_use"}) == 0
        assert sample("wallet_db_pool_connections", {"database": database, "state": "idle"}) == 1
    finally:
        await pool.close()
    assert sample("wallet_db_pool_size_max", {"database": database}) is None


async def test_redis_commands_and_pipelines_are_timed(redis_server_url: str) -> None:
    client = create_redis(redis_server_url)
    try:
        before_get = sample("wallet_redis_command_seconds_count", {"command": "GET"}) or 0.0
        before_pipeline = sample("wallet_redis_command_seconds_count", {"command": "PIPELINE"}) or 0.0
        await client.get("kit:test:absent")
        async with client.pipeline(transaction=False) as pipe:
            pipe.get("kit:test:absent")
            pipe.get("kit:test:absent")
            await pipe.execute()
        assert sample("wallet_redis_command_seconds_count", {"command": "GET"}) == before_get + 1
        assert sample("wallet_redis_command_seconds_count", {"command": "PIPELINE"}) == before_pipeline + 1
    finally:
        await client.aclose()
