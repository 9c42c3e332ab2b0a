"""KeptConnection: back-to-back statements share one connection (no pool reset between them), an idle one goes
back to the pool, a failed statement gives its connection back at once, and concurrent callers never share one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.kit.kept_connection import KeptConnection

pytestmark = pytest.mark.integration

IDLE_RELEASE_S = 0.02


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert created is not None
    try:
        yield created
    finally:
        await created.close()


async def _backend(kept: KeptConnection) -> int:
    rows = await kept.fetch("SELECT pg_backend_pid() AS pid")
    return int(rows[0]["pid"])


async def _all_come_back(pool: asyncpg.Pool) -> None:
    # Bounded wait for the release task (no speed is asserted: the loop only has to run the timer).
    for _ in range(500):
        if pool.get_idle_size() == pool.get_size():
            return
        await asyncio.sleep(IDLE_RELEASE_S)
    raise AssertionError("the kept connection was never given back")


async def test_back_to_back_statements_keep_one_connection_and_idle_gives_it_back(pool: asyncpg.Pool) -> None:
    kept = KeptConnection(lambda: pool, idle_release_s=IDLE_RELEASE_S)
    idle_before = pool.get_idle_size()
    first = await _backend(kept)
    assert await _backend(kept) == first
    assert pool.get_idle_size() == idle_before - 1  # held between statements
    await _all_come_back(pool)


async def test_a_failed_statement_gives_its_connection_back(pool: asyncpg.Pool) -> None:
    kept = KeptConnection(lambda: pool, idle_release_s=60.0)
    idle_before = pool.get_idle_size()
    with pytest.raises(asyncpg.PostgresError):
        await kept.fetch("SELECT 1 / 0")
    assert pool.get_idle_size() == idle_before


async def test_concurrent_callers_use_separate_connections(pool: asyncpg.Pool) -> None:
    kept = KeptConnection(lambda: pool, idle_release_s=IDLE_RELEASE_S)
    rows = await asyncio.gather(*(kept.fetch("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)") for _ in range(3)))
    assert len({row[0]["pid"] for row in rows}) == 3
    await _all_come_back(pool)
