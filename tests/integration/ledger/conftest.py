"""Fixtures for the ledger's integration tests: one migrated database and one real server per test module, a
client that mints tokens for any tenant and role, and helpers to open and fund accounts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from devstack.databases import with_database
from services.kit.grpc_server import WalletServer
from services.kit.migrations import apply_migrations
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from services.ledger.app import LedgerApp
from services.ledger.export_keys import ExportKeys
from services.ledger.server import registrations_for
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2_grpc, ledger_transfers_pb2

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "ledger" / "migrations"
# Compliance exports' keys in the tests: the server secret and one named key, `quarterly`.
TEST_EXPORT_KEYS = ExportKeys(b"export server secret for tests..", {"quarterly": b"quarterly named key for tests..."})


@dataclass
class LedgerHarness:
    server: WalletServer
    app: LedgerApp
    stub: ledger_service_pb2_grpc.LedgerServiceStub
    key: SigningKey
    database_url: str
    redis_url: str
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def token(self, *, org: str | None = None, roles: list[str] | None = None, **claims: Any) -> str:
        return self.key.mint(org=org or self.organization_id, roles=roles or ["owner"], **claims)

    def auth(self, **kwargs: Any) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(**kwargs)}"),)

    def customer_auth(self, customer_id: str, org: str | None = None) -> tuple[tuple[str, str], ...]:
        return self.auth(org=org, roles=["customer"], pty="customer", sub=customer_id)

    async def open(
        self,
        currency: str = "EUR",
        kind: int = ledger_accounts_pb2.ACCOUNT_KIND_OPERATING,
        *,
        customer_id: str = "",
        org: str | None = None,
        **fields: Any,
    ) -> str:
        account_id = str(uuid.uuid4())
        await self.stub.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=account_id, kind=kind, currency=currency, customer_id=customer_id, **fields
            ),
            metadata=self.auth(org=org),
        )
        return account_id

    async def fund(self, account_id: str, amount_minor: int, currency: str = "EUR", *, org: str | None = None) -> str:
        """Credits ``account_id`` from a fresh suspense account (no balance rule)."""
        source = await self.open(currency, ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, org=org)
        await self.transfer(source, account_id, amount_minor, currency, org=org)
        return source

    async def transfer(
        self,
        debit: str,
        credit: str,
        amount_minor: int,
        currency: str = "EUR",
        *,
        org: str | None = None,
        **fields: Any,
    ) -> ledger_transfers_pb2.Transfer:
        response = await self.stub.CreateTransfer(
            ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
                **fields,
            ),
            metadata=self.auth(org=org),
        )
        return response.transfer

    async def balance(self, account_id: str, *, org: str | None = None) -> ledger_accounts_pb2.AccountBalance:
        response = await self.stub.GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=self.auth(org=org)
        )
        return response.account.balance


async def migrated_database(postgres_server_url: str) -> tuple[str, str]:
    name = f"test_ledger_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(postgres_server_url, name)
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection, MIGRATIONS, scope="ledger")
    finally:
        await connection.close()
    return url, name


async def drop_database(postgres_server_url: str, name: str) -> None:
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def ledger(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[LedgerHarness]:
    url, name = await migrated_database(postgres_server_url)
    key = SigningKey()
    config = config_for_tests("ledger", url, redis_server_url)
    holder: dict[str, LedgerApp] = {}

    def build(runtime: Any) -> Any:
        holder["app"] = LedgerApp(runtime, export_keys=TEST_EXPORT_KEYS)
        return registrations_for(holder["app"])

    server = await start_test_server(config, build, static_verifier(key))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield LedgerHarness(
                server=server,
                app=holder["app"],
                stub=ledger_service_pb2_grpc.LedgerServiceStub(channel),
                key=key,
                database_url=url,
                redis_url=redis_server_url,
            )
    finally:
        await server.stop()
        await drop_database(postgres_server_url, name)
