"""A real contacts server per test module: its own fresh, migrated database, real Redis, port 0, dev-style keys
(two KEK and blind-index versions in the ring, so rotations have somewhere to go) and a run dir in tmp."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest

from devstack.databases import with_database
from services.contacts.config import ContactsConfig, load_contacts_config
from services.contacts.server import ContactsApp
from services.kit.grpc_server import WalletServer
from services.kit.migrations import apply_migrations
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from wallet.contacts.v1 import contacts_service_pb2_grpc

RESOLVE_LIMIT_PER_MIN = 30
MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "contacts" / "migrations"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def vault_environ(run_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "CONTACTS_KEK": new_key(),
        "CONTACTS_KEK_V2": new_key(),
        "CONTACTS_BLIND_INDEX_KEY": new_key(),
        "CONTACTS_BLIND_INDEX_KEY_V2": new_key(),
        "CONTACTS_BACKUP_KEY": new_key(),
        "CONTACTS_RESOLVE_PER_CALLER_PER_MIN": str(RESOLVE_LIMIT_PER_MIN),
        "CONTACTS_KEY_JOB_BATCH_SIZE": "2",
        "CONTACTS_SMS_OUTBOX": str(run_dir / "sms" / "outbox.jsonl"),
        "CONTACTS_BACKUP_DIR": str(run_dir / "backups"),
        **extra,
    }


async def create_migrated_database(postgres_server_url: str) -> str:
    name = f"test_contacts_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(postgres_server_url, name)
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection, MIGRATIONS, "contacts")
    finally:
        await connection.close()
    return url


async def drop_database(postgres_server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Vault:
    """One running contacts server and what tests need to talk to it."""

    server: WalletServer
    app: ContactsApp
    config: ContactsConfig
    database_url: str
    run_dir: Path
    key: SigningKey
    channel: grpc.aio.Channel
    stub: contacts_service_pb2_grpc.ContactsServiceStub
    organization_id: str

    def token(self, **claims: Any) -> tuple[tuple[str, str], ...]:
        claims.setdefault("org", self.organization_id)
        return (("authorization", f"Bearer {self.key.mint(**claims)}"),)

    def customer(self, customer_id: str) -> tuple[tuple[str, str], ...]:
        return self.token(sub=customer_id, pty="customer", roles=["customer"])

    def member(self, *roles: str, step_up: bool = False) -> tuple[tuple[str, str], ...]:
        extra: dict[str, Any] = {"acr": "mfa", "amr": ["pwd", "otp"]} if step_up else {}
        return self.token(pty="member", roles=list(roles), **extra)

    def service(self, *scopes: str) -> tuple[tuple[str, str], ...]:
        return self.token(pty="service", roles=[], scope=" ".join(scopes))


async def start_vault(
    postgres_server_url: str, redis_url: str, run_dir: Path, environ: dict[str, str], database_url: str | None = None
) -> Vault:
    url = database_url or await create_migrated_database(postgres_server_url)
    config = load_contacts_config(run_dir, environ)
    app = ContactsApp(config)
    key = SigningKey()
    server = await start_test_server(
        config_for_tests("contacts", url, redis_url, WALLET_RUN_DIR=str(run_dir)), app.build, static_verifier(key)
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return Vault(
        server,
        app,
        config,
        url,
        run_dir,
        key,
        channel,
        contacts_service_pb2_grpc.ContactsServiceStub(channel),
        str(uuid.uuid4()),
    )


async def stop_vault(vault: Vault, postgres_server_url: str) -> None:
    await vault.channel.close()
    await vault.server.stop()
    await drop_database(postgres_server_url, vault.database_url)


@pytest.fixture(scope="module")
def vault_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contacts-run")


@pytest.fixture(scope="module")
def vault_keys(vault_run_dir: Path) -> dict[str, str]:
    return vault_environ(vault_run_dir)


@pytest.fixture(scope="module")
async def vault(
    postgres_server_url: str, redis_server_url: str, vault_run_dir: Path, vault_keys: dict[str, str]
) -> AsyncIterator[Vault]:
    running = await start_vault(postgres_server_url, redis_server_url, vault_run_dir, vault_keys)
    try:
        yield running
    finally:
        await stop_vault(running, postgres_server_url)
