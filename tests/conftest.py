"""Shared fixtures: real Postgres and Redis — the URLs given, or embedded ones this session starts itself.

``DATABASE_URL`` (a server URL; each test gets a fresh database on it) and ``REDIS_URL`` come from the environment
when set (CI exports the machine's servers); otherwise an embedded Postgres and Redis are started once per session
under ``.run/test-*`` inside the checkout and stopped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack import start_embedded_postgres, start_embedded_redis
from devstack.databases import with_database
from services.kit.config import Env
from services.kit.telemetry import setup_telemetry

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_RUN_DIR = REPO_ROOT / ".run" / "test"


@pytest.fixture(scope="session", autouse=True)
def span_exporter() -> InMemorySpanExporter:
    """Every span finished in this test process, in memory (installed before any server or channel is created)."""
    exporter = InMemorySpanExporter()
    setup_telemetry("tests", env=Env({}), extra_exporters=[exporter])
    return exporter


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    server = start_embedded_postgres(TEST_RUN_DIR / "postgres")
    try:
        yield server.url
    finally:
        server.stop()


# A given Redis is shared (other test sessions, a developer's `make run`, yesterday's leftovers): each session
# claims one logical database of its own, empties it, and releases it at the end, so tests that read a whole
# stream or scan every key see only this session's data. Database 0 (services' default) and 13-15 (benchmarks)
# are never used.
TEST_REDIS_DATABASES = range(1, 13)
REDIS_CLAIM_TTL_S = 4 * 3600


def _claim_redis_database(url: str) -> tuple[str, int, str]:
    import redis as redis_sync

    token = uuid.uuid4().hex
    base = redis_sync.Redis.from_url(url, db=0)
    try:
        for number in TEST_REDIS_DATABASES:
            if base.set(f"wallet-tests:redis-db:{number}", token, nx=True, ex=REDIS_CLAIM_TTL_S):
                redis_sync.Redis.from_url(url, db=number).flushdb()
                return urlsplit(url)._replace(path=f"/{number}").geturl(), number, token
    finally:
        base.close()
    raise RuntimeError(f"all test Redis databases {TEST_REDIS_DATABASES} are claimed by other sessions")


def _release_redis_database(url: str, number: int, token: str) -> None:
    import redis as redis_sync

    base = redis_sync.Redis.from_url(url, db=0)
    try:
        if base.get(f"wallet-tests:redis-db:{number}") == token.encode():
            redis_sync.Redis.from_url(url, db=number).flushdb()
            base.delete(f"wallet-tests:redis-db:{number}")
    finally:
        base.close()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        session_url, number, token = _claim_redis_database(given)
        try:
            yield session_url
        finally:
            _release_redis_database(given, number, token)
        return
    server = start_embedded_redis(TEST_RUN_DIR / "redis")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(postgres_server_url, name)
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def redis_client(redis_server_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_server_url)
    try:
        yield client
    finally:
        await client.aclose()
