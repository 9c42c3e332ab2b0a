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


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
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
