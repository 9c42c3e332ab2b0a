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


class LedgerLauncher:
    """Starts ledger processes that trust one test signing key (through a JWKS-only stand-in for auth); the first
    process on a database migrates it. Every process is stopped by the fixture."""

    def __init__(self, key: SigningKey, jwks_port: int, run_dir: Path) -> None:
        self.key = key
        self.organization_id = str(uuid.uuid4())
        self._jwks_port = jwks_port
        self._run_dir = run_dir
        self._migrated: set[str] = set()
        self.started: list[ServiceProcess] = []

    async def start(self, database_url: str, redis_url: str) -> Ledger:
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "AUTH_ADDR": f"127.0.0.1:{self._jwks_port}",
            "WALLET_RUN_DIR": str(self._run_dir),
            "LOG_LEVEL": "WARNING",
            "RISK_GATE": "off",
        }
        log_path = self._run_dir / f"ledger-{len(self.started)}.log"
        process = ServiceProcess("ledger", free_port(), settings, log_path)
        if database_url not in self._migrated:
            await asyncio.to_thread(process.migrate)
            self._migrated.add(database_url)
        self.started.append(process)
        await process.start()
        return Ledger(process, self.key, database_url, self.organization_id)


@pytest.fixture
async def ledger_launcher(tmp_path: Path) -> AsyncIterator[LedgerLauncher]:
    key = SigningKey()
    jwks_server, jwks_port = await start_jwks_server(key)
    launcher = LedgerLauncher(key, jwks_port, tmp_path)
    try:
        yield launcher
    finally:
        for process in launcher.started:
            process.stop()
        await jwks_server.stop(None)


LedgerFactory = Callable[[], Awaitable[Ledger]]


@pytest.fixture
def ledger_replicas(ledger_launcher: LedgerLauncher, database_url: str, redis_server_url: str) -> LedgerFactory:
    """Starts ledger replicas on one database, each on its own port."""

    async def start_replica() -> Ledger:
        return await ledger_launcher.start(database_url, redis_server_url)

    return start_replica


@pytest.fixture
async def ledger(ledger_replicas: LedgerFactory) -> Ledger:
    return await ledger_replicas()
