"""Fixtures of auth's integration tests: one real auth server per test module (port 0, its own fresh database,
the session's Redis), an injectable clock, and helpers to sign up tenants and call the service."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest

from devstack.databases import with_database
from services.auth.__main__ import MIGRATIONS_DIR
from services.auth.app import AuthApplication
from services.auth.config import load_auth_settings
from services.kit.config import ServiceConfig
from services.kit.grpc_server import Runtime, WalletServer
from services.kit.migrations import apply_migrations
from services.kit.status import ErrorDetails
from services.kit.testing import config_for_tests
from wallet.auth.v1 import auth_organizations_pb2, auth_service_pb2_grpc, auth_sessions_pb2

OWNER_PASSWORD = "correct horse battery staple 42"
# Where test servers write their member mail (tests/conftest.py keeps its embedded databases beside it).
TEST_MAIL_DIR = Path(__file__).resolve().parents[3] / ".run" / "test" / "mail"


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


def auth_env(**overrides: str) -> dict[str, str]:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    # Each test server mails members into its own file under the tests' run directory, never the dev suite's.
    outbox = TEST_MAIL_DIR / f"auth-{uuid.uuid4().hex[:12]}.jsonl"
    return {"AUTH_SIGNING_KEY_ENCRYPTION_KEY": key, "AUTH_MAIL_OUTBOX": str(outbox), **overrides}


async def create_database(server_url: str) -> str:
    name = f"test_auth_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection, MIGRATIONS_DIR, scope="auth")
    finally:
        await connection.close()
    return url


async def drop_database(server_url: str, url: str) -> None:
    name = url.split("/test_auth_", 1)[1].split("?")[0]
    name = f"test_auth_{name}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class RunningAuth:
    server: WalletServer
    app: AuthApplication
    clock: Clock
    config: ServiceConfig
    channel: grpc.aio.Channel
    stub: auth_service_pb2_grpc.AuthServiceStub
    database_url: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


async def start_auth(database_url: str, redis_url: str, env: dict[str, str]) -> RunningAuth:
    config = config_for_tests("auth", database_url, redis_url)
    clock = Clock()
    runtime = Runtime(config=config, verifier=None)
    app = AuthApplication(runtime, load_auth_settings(env), clock=clock)
    runtime.verifier = app.verifier
    server = WalletServer(runtime, app.registrations())
    await server.start()
    for job in app.background_jobs():
        runtime.background_tasks.append(asyncio.create_task(job))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return RunningAuth(
        server, app, clock, config, channel, auth_service_pb2_grpc.AuthServiceStub(channel), database_url
    )


@pytest.fixture(scope="module")
async def auth(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[RunningAuth]:
    database_url = await create_database(postgres_server_url)
    running = await start_auth(database_url, redis_server_url, auth_env())
    try:
        yield running
    finally:
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def unique_slug(prefix: str = "org") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Tenant:
    organization_id: str
    slug: str
    owner_id: str
    owner_email: str
    access_token: str
    refresh_token: str


async def sign_up(stub: auth_service_pb2_grpc.AuthServiceStub, slug: str | None = None) -> Tenant:
    slug = slug or unique_slug()
    organization_id = str(uuid.uuid4())
    email = f"owner@{slug}.example.com"
    reply = await stub.SignUpOrganization(
        auth_organizations_pb2.SignUpOrganizationRequest(
            organization_id=organization_id,
            slug=slug,
            display_name=f"Org {slug}",
            owner_email=email,
            owner_display_name="Olive Owner",
            owner_password=OWNER_PASSWORD,
        )
    )
    return Tenant(
        organization_id, slug, reply.owner_member_id, email, reply.tokens.access_token, reply.tokens.refresh_token
    )


async def login(
    stub: auth_service_pb2_grpc.AuthServiceStub, slug: str, email: str, password: str = OWNER_PASSWORD
) -> auth_sessions_pb2.LoginResponse:
    return await stub.Login(auth_sessions_pb2.LoginRequest(organization_slug=slug, login=email, password=password))


def error_of(raised: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> ErrorDetails:
    return ErrorDetails.from_rpc_error(raised.value)
