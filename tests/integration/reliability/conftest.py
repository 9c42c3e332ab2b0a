"""Fixtures for the reliability tests: real service processes that the tests crash, stop and restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.kit.testing import SigningKey
from tests.support.service_process import ServiceProcess, free_port, start_jwks_server

# Reconnect quickly after each restart instead of gRPC's default backoff (up to two minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass
class Ledger:
    process: ServiceProcess
    key: SigningKey
    database_url: str
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def metadata(self) -> tuple[tuple[str, str], ...]:
        token = self.key.mint(org=self.organization_id, roles=["owner"])
        return (("authorization", f"Bearer {token}"),)


LedgerFactory = Callable[[], Awaitable[Ledger]]


@pytest.fixture
async def ledger_replicas(database_url: str, redis_server_url: str, tmp_path: Path) -> AsyncIterator[LedgerFactory]:
    """Starts ledger processes (replicas) on one migrated database, each on its own port, all stopped at the end."""
    key = SigningKey()
    organization_id = str(uuid.uuid4())
    jwks_server, jwks_port = await start_jwks_server(key)
    started: list[ServiceProcess] = []

    async def start_replica() -> Ledger:
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server_url,
            "AUTH_ADDR": f"127.0.0.1:{jwks_port}",
            "WALLET_RUN_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
            "RISK_GATE": "off",
        }
        process = ServiceProcess("ledger", free_port(), settings, tmp_path / f"ledger-{len(started)}.log")
        if not started:
            await asyncio.to_thread(process.migrate)
        started.append(process)
        await process.start()
        return Ledger(process, key, database_url, organization_id)

    try:
        yield start_replica
    finally:
        for process in started:
            process.stop()
        await jwks_server.stop(None)


@pytest.fixture
async def ledger(ledger_replicas: LedgerFactory) -> Ledger:
    return await ledger_replicas()
