"""The real auth, ledger, contacts and risk services in this test process, each on port 0 with its own fresh,
migrated database and the session's Redis, wired as in production: auth signs tokens with its own keys, and the
others verify them with the kit's ``AuthServiceJwksSource`` pointed at that auth. As ``make run`` does, the ledger
and risk get platform clients from auth's bootstrap (the ledger's for PayByPhone's ResolvePhone and card secrets in
contacts, risk's for resolving reviews in the ledger and, for complaints, reading and refunding disputed transfers
and notifying customers through contacts) and ask auth for their service tokens.

For tests that cross services (the gateway's flows and fuzzing). Each service's own suites keep their
single-service fixtures; this module reuses auth's start-up helper and contacts' key set-up instead of copying them,
and the bench's fresh-database helper.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.databases import fresh_service_database
from devstack.databases import with_database
from devstack.platform_clients import PLATFORM_CLIENTS
from services.auth.bootstrap import bootstrap_platform_client
from services.contacts.config import load_contacts_config
from services.contacts.server import ContactsApp
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.jwks import AuthServiceJwksSource
from services.kit.service_tokens import ClientCredentialsTokens, ServiceClient
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER, config_for_tests, start_test_server
from services.kit.tokens import TokenVerifier
from services.ledger.app import LedgerApp
from services.ledger.card_vault import CARD_SECRET_SCOPES, GrpcCardVault
from services.ledger.contacts_client import DIRECTORY_SCOPE, GrpcPayeeDirectory
from services.ledger.server import registrations_for as ledger_registrations
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.contacts_client import GrpcComplaintNotifier
from services.risk.ledger_client import GrpcComplaintLedger, GrpcLedgerReviews
from services.risk.server import registrations_for as risk_registrations
from tests.integration.auth.conftest import RunningAuth, auth_env, start_auth
from tests.integration.contacts.conftest import vault_environ


@dataclass
class ServicesStack:
    auth: RunningAuth
    ledger: WalletServer
    contacts: WalletServer
    risk: WalletServer
    database_names: list[str]
    contacts_app: ContactsApp
    run_dir: Path
    database_urls: dict[str, str]
    card_vault: GrpcCardVault
    # Risk's wiring, for tests that run its background work by hand (complaint notifications, gauges).
    risk_app: RiskApp

    @property
    def addresses(self) -> dict[str, str]:
        """Where each service listens, by short name (``auth`` → ``AUTH_ADDR``)."""
        return {
            "auth": self.auth.address,
            "ledger": f"127.0.0.1:{self.ledger.port}",
            "contacts": f"127.0.0.1:{self.contacts.port}",
            "risk": f"127.0.0.1:{self.risk.port}",
        }


def auth_backed_verifier(auth_address: str) -> TokenVerifier:
    """What ``python -m services.<svc>`` builds: tokens checked against auth's published keys."""
    return TokenVerifier(
        AuthServiceJwksSource(auth_address), audience=TEST_AUDIENCE, issuer=TEST_ISSUER, refresh_min_interval_s=0.0
    )


async def _database(postgres_server_url: str, service: str, names: list[str], urls: dict[str, str]) -> str:
    name = f"test_{service}_{uuid.uuid4().hex[:12]}"
    url = with_database(postgres_server_url, name)
    await fresh_service_database(postgres_server_url, url, name, service)
    names.append(name)
    urls[service] = url
    return url


async def platform_client(auth: RunningAuth, name: str, *scopes: str) -> ServiceClient:
    """A platform client created the way ``make run`` creates it (``bootstrap-platform-client``)."""
    client_id, client_secret, _ = await bootstrap_platform_client(auth.app.store, name, scopes)
    return ServiceClient(client_id, client_secret, tuple(scopes))


def scoped_tokens(auth: RunningAuth, client: ServiceClient, *scopes: str) -> ClientCredentialsTokens:
    """The token source a service builds from its platform client, asking for only these of its scopes."""
    assert set(scopes) <= set(client.scopes), (scopes, client.scopes)
    return ClientCredentialsTokens(auth.address, ServiceClient(client.client_id, client.client_secret, scopes))


async def platform_tokens(auth: RunningAuth, name: str, *scopes: str) -> ClientCredentialsTokens:
    """A platform client and the token source a service builds from it, with all of its scopes."""
    return scoped_tokens(auth, await platform_client(auth, name, *scopes), *scopes)


async def start_services(postgres_server_url: str, redis_url: str, run_dir: Path) -> ServicesStack:
    """Starts auth, then the others trusting it; the caller stops them with ``stop_services``."""
    names: list[str] = []
    urls: dict[str, str] = {}
    auth = await start_auth(await _database(postgres_server_url, "auth", names, urls), redis_url, auth_env())
    verifier = auth_backed_verifier(auth.address)
    contacts_url = await _database(postgres_server_url, "contacts", names, urls)
    contacts_app = ContactsApp(load_contacts_config(run_dir, vault_environ(run_dir)))
    contacts = await start_test_server(
        config_for_tests("contacts", contacts_url, redis_url, WALLET_RUN_DIR=str(run_dir)),
        contacts_app.build,
        verifier,
    )
    # One platform client for the ledger, as make run bootstraps it; each contacts client asks for its own scopes.
    ledger_client = await platform_client(auth, "ledger", DIRECTORY_SCOPE, *CARD_SECRET_SCOPES)
    contacts_address = f"127.0.0.1:{contacts.port}"
    directory = GrpcPayeeDirectory(contacts_address, scoped_tokens(auth, ledger_client, DIRECTORY_SCOPE))
    card_vault = GrpcCardVault(contacts_address, scoped_tokens(auth, ledger_client, *CARD_SECRET_SCOPES))

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        return ledger_registrations(LedgerApp(runtime, directory=directory, card_vault=card_vault))

    ledger_url = await _database(postgres_server_url, "ledger", names, urls)
    ledger = await start_test_server(config_for_tests("ledger", ledger_url, redis_url), build_ledger, verifier)
    suffix = uuid.uuid4().hex[:8]
    risk_config = RiskConfig(ledger_events_stream=f"test.ledger.events.{suffix}", consumer_group=f"risk-{suffix}")
    risk_tokens = await platform_tokens(auth, "risk", *PLATFORM_CLIENTS["risk"])
    ledger_address = f"127.0.0.1:{ledger.port}"
    reviews = GrpcLedgerReviews(ledger_address, risk_tokens)
    complaint_ledger = GrpcComplaintLedger(ledger_address, risk_tokens)
    notifier = GrpcComplaintNotifier(f"127.0.0.1:{contacts.port}", risk_tokens)
    risk_apps: list[RiskApp] = []

    def build_risk(runtime: Runtime) -> Sequence[Registration]:
        app = RiskApp(runtime, risk_config, reviews, complaint_ledger=complaint_ledger, notifier=notifier)
        risk_apps.append(app)
        registrations: Any = risk_registrations(app)(runtime)
        return list(registrations)

    risk_url = await _database(postgres_server_url, "risk", names, urls)
    risk = await start_test_server(config_for_tests("risk", risk_url, redis_url), build_risk, verifier)
    risk.runtime.background_tasks.append(asyncio.create_task(risk_apps[0].recorder.run()))
    return ServicesStack(auth, ledger, contacts, risk, names, contacts_app, run_dir, urls, card_vault, risk_apps[0])


async def stop_services(stack: ServicesStack, postgres_server_url: str) -> None:
    for server in (stack.risk, stack.contacts, stack.ledger):
        await server.stop()
    await stack.card_vault.close()
    await stack.auth.channel.close()
    await stack.auth.server.stop()
    admin = await asyncpg.connect(postgres_server_url)
    try:
        for name in stack.database_names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
