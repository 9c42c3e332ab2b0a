"""The suite walletctl talks to in its tests: real auth, ledger, contacts and risk servers on port 0 (fresh,
migrated databases, the session's Redis), where ledger, contacts and risk verify tokens against auth's own JWKS, as
in production. walletctl signs in as a platform service account made with auth's bootstrap, and runs in a worker
thread (its own ``asyncio.run``) while the servers serve on the test's loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest
from click.testing import Result
from typer.testing import CliRunner

from bench.databases import fresh_service_database
from cli.walletctl import app as walletctl
from devstack.databases import with_database
from services.auth.bootstrap import bootstrap_platform_client
from services.contacts.config import load_contacts_config
from services.contacts.jobs import key_job_worker
from services.contacts.server import ContactsApp
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.testing import SigningKey, config_for_tests, start_test_server
from services.ledger.app import LedgerApp
from services.ledger.server import registrations_for as ledger_registrations
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.ledger_client import GrpcLedgerReviews
from services.risk.server import registrations_for as risk_registrations
from tests.integration.auth.conftest import (
    RunningAuth,
    Tenant,
    auth_env,
    create_database,
    drop_database,
    sign_up,
    start_auth,
)
from tests.integration.contacts.conftest import vault_environ
from tests.integration.ledger.conftest import TEST_EXPORT_KEYS
from tests.integration.risk.conftest import Tokens
from tests.integration.services_stack import auth_backed_verifier
from wallet.ledger.v1 import ledger_service_pb2_grpc

OPERATOR_SCOPES = (
    "auth.keys.admin",
    "contacts.keys.admin",
    "contacts.keys.read",
    "contacts.backups.admin",
    "ledger.integrity.read",
    "risk.rules.read",
    "risk.rules.write",
)
# An address where nothing listens: port 1 is privileged and never bound by the tests.
DOWN_ADDRESS = "127.0.0.1:1"


@dataclass
class Suite:
    auth: RunningAuth
    ledger: WalletServer
    ledger_app: LedgerApp
    contacts: WalletServer
    contacts_app: ContactsApp
    risk: WalletServer
    client_id: str
    client_secret: str
    run_dir: Path

    def environ(self, **overrides: str) -> dict[str, str]:
        """walletctl's environment: the suite's addresses and the operator's client credentials."""
        environ = {
            "AUTH_ADDR": self.auth.address,
            "LEDGER_ADDR": f"127.0.0.1:{self.ledger.port}",
            "CONTACTS_ADDR": f"127.0.0.1:{self.contacts.port}",
            "RISK_ADDR": f"127.0.0.1:{self.risk.port}",
            "WALLET_RUN_DIR": str(self.run_dir),
            "WALLETCTL_CLIENT_ID": self.client_id,
            "WALLETCTL_CLIENT_SECRET": self.client_secret,
            "WALLETCTL_TOKEN": "",
            "WALLETCTL_ORGANIZATION_ID": "",
        }
        environ.update(overrides)
        return environ

    def ledger_stub(self, channel: grpc.aio.Channel) -> ledger_service_pb2_grpc.LedgerServiceStub:
        return ledger_service_pb2_grpc.LedgerServiceStub(channel)

    async def tenant(self) -> Tenant:
        return await sign_up(self.auth.stub)


async def walletctl_run(args: Sequence[str], environ: Mapping[str, str]) -> Result:
    """Runs walletctl in a worker thread (it calls ``asyncio.run``), with stdout and stderr kept apart."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, walletctl, list(args), env=dict(environ), catch_exceptions=False)


async def migrated_database(postgres_server_url: str, service: str) -> str:
    name = f"test_cli_{service}_{uuid.uuid4().hex[:12]}"
    url = with_database(postgres_server_url, name)
    await fresh_service_database(postgres_server_url, url, name, service)
    return url


async def drop_named_database(postgres_server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def suite(
    postgres_server_url: str, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    run_dir = tmp_path_factory.mktemp("walletctl-run")
    auth_url = await create_database(postgres_server_url)
    auth = await start_auth(auth_url, redis_server_url, auth_env())
    client_id, client_secret, _ = await bootstrap_platform_client(
        auth.app.store, f"walletctl-{uuid.uuid4().hex[:8]}", OPERATOR_SCOPES
    )

    ledger_url = await migrated_database(postgres_server_url, "ledger")
    ledger_holder: list[LedgerApp] = []

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        ledger_holder.append(LedgerApp(runtime, export_keys=TEST_EXPORT_KEYS))
        return ledger_registrations(ledger_holder[0])

    ledger = await start_test_server(
        config_for_tests("ledger", ledger_url, redis_server_url), build_ledger, auth_backed_verifier(auth.address)
    )

    contacts_url = await migrated_database(postgres_server_url, "contacts")
    contacts_app = ContactsApp(load_contacts_config(run_dir, vault_environ(run_dir)))
    contacts = await start_test_server(
        config_for_tests("contacts", contacts_url, redis_server_url, WALLET_RUN_DIR=str(run_dir)),
        contacts_app.build,
        auth_backed_verifier(auth.address),
    )
    assert contacts_app.vault is not None
    contacts.runtime.background_tasks.append(asyncio.create_task(key_job_worker(contacts_app.vault.keys)))

    risk_url = await migrated_database(postgres_server_url, "risk")
    suffix = uuid.uuid4().hex[:8]
    risk_config = RiskConfig(ledger_events_stream=f"test.cli.events.{suffix}", consumer_group=f"risk-{suffix}")
    risk_app_holder: list[RiskApp] = []

    def build_risk(runtime: Runtime) -> Sequence[Registration]:
        reviews = GrpcLedgerReviews(f"127.0.0.1:{ledger.port}", Tokens(SigningKey()))
        risk_app_holder.append(RiskApp(runtime, risk_config, reviews))
        return risk_registrations(risk_app_holder[0])(runtime)

    risk = await start_test_server(
        config_for_tests("risk", risk_url, redis_server_url), build_risk, auth_backed_verifier(auth.address)
    )
    try:
        yield Suite(auth, ledger, ledger_holder[0], contacts, contacts_app, risk, client_id, client_secret, run_dir)
    finally:
        await risk.stop()
        await contacts.stop()
        await ledger.stop()
        await auth.channel.close()
        await auth.server.stop()
        await drop_database(postgres_server_url, auth_url)
        for url in (ledger_url, contacts_url, risk_url):
            await drop_named_database(postgres_server_url, url)
