"""Fixtures for the risk service's integration tests: one migrated database, one risk server (with its recorder
running) and a fake ledger at the edge per test module; a fresh tenant per test keeps them apart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as redis_asyncio

from devstack.databases import with_database
from services.kit.errors import Unavailable
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.migrations import apply_migrations
from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.request_context import current_principal
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.consumer import LedgerEventConsumer
from services.risk.ledger_client import GrpcLedgerReviews
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import (
    ledger_approvals_pb2,
    ledger_events_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)
from wallet.risk.v1 import risk_service_pb2_grpc

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "risk" / "migrations"
# Importing the service module registers its descriptor, whose method policies the kit interceptor reads.
LEDGER = ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


@dataclass
class FakeLedger(ledger_service_pb2_grpc.LedgerServiceServicer):
    """Only ResolveTransferReview, recording what it was asked; ``fail_next`` makes calls answer UNAVAILABLE."""

    calls: list[tuple[str, ledger_approvals_pb2.ResolveTransferReviewRequest]] = field(default_factory=list)
    fail_next: int = 0

    async def ResolveTransferReview(
        self, request: ledger_approvals_pb2.ResolveTransferReviewRequest, context: Any
    ) -> ledger_approvals_pb2.ResolveTransferReviewResponse:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise Unavailable("ledger is restarting")
        principal = current_principal()
        assert principal is not None
        self.calls.append((principal.organization_id, request))
        return ledger_approvals_pb2.ResolveTransferReviewResponse()


class Tokens:
    """Mints the tokens the ledger (service account) and staff would present."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    async def token_for(self, organization_id: str) -> str:
        return self.key.mint(pty="service", roles=[], scope="ledger.reviews.approve", org=organization_id)

    def service(self, org: str) -> str:
        return self.key.mint(pty="service", roles=[], scope="risk.assessments.assess", org=org)

    def member(self, org: str, role: str, *, step_up: bool = False) -> str:
        claims: dict[str, Any] = {"org": org, "roles": [role]}
        if step_up:
            claims.update(acr="mfa", amr=["pwd", "otp"], auth_time=int(time.time()))
        return self.key.mint(**claims)


@dataclass
class RiskStack:
    app: RiskApp
    server: WalletServer
    stub: Any
    channel: grpc.aio.Channel
    tokens: Tokens
    ledger: FakeLedger
    redis: redis_asyncio.Redis
    consumer: LedgerEventConsumer
    config: RiskConfig
    database_url: str
    ledger_port: int

    @staticmethod
    def auth(token: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),)

    async def publish_posted(
        self,
        org: str,
        *,
        debit: str,
        credit: str,
        amount_minor: int,
        posted_at_s: float | None = None,
        device_id: str = "",
        event_id: uuid.UUID | None = None,
        currency: str = "EUR",
        transfer_id: str = "",
    ) -> str:
        """XADDs a real TransferPosted envelope as the ledger's relay would; returns the transfer id."""
        transfer_id = transfer_id or str(uuid.uuid4())
        moment = time.time() if posted_at_s is None else posted_at_s
        facts = ledger_events_pb2.TransferFacts(
            transfer_id=transfer_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
            kind=ledger_transfers_pb2.TRANSFER_KIND_STANDARD,
            device_id=device_id,
        )
        posted = ledger_events_pb2.TransferPosted(
            transfer=facts, posted_amount=money_pb2.Money(currency=currency, amount_minor=amount_minor)
        )
        posted.posted_at.FromNanoseconds(int(moment * 1e9))
        envelope = make_envelope(
            event_type_payload=posted,
            organization_id=org,
            partition_key=debit,
            event_id=event_id,
            occurred_at_s=moment,
        )
        await self.redis.xadd(self.config.ledger_events_stream, {STREAM_ENTRY_FIELD: envelope.SerializeToString()})
        return transfer_id

    async def xadd(self, org: str, payload: Any, partition_key: str, event_id: uuid.UUID | None = None) -> None:
        envelope = make_envelope(
            event_type_payload=payload, organization_id=org, partition_key=partition_key, event_id=event_id
        )
        await self.redis.xadd(self.config.ledger_events_stream, {STREAM_ENTRY_FIELD: envelope.SerializeToString()})

    async def consume_all(self) -> int:
        total = 0
        while True:
            handled = await self.consumer.consume_once(block_ms=None)
            if handled == 0:
                return total
            total += handled


@pytest.fixture(scope="module")
async def risk_database(postgres_server_url: str) -> AsyncIterator[str]:
    name = f"test_risk_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(postgres_server_url, name)
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection, MIGRATIONS, scope="risk")
    finally:
        await connection.close()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def start_risk(
    database_url: str, redis_url: str, key: SigningKey, ledger_port: int, config: RiskConfig
) -> tuple[WalletServer, RiskApp]:
    holder: list[RiskApp] = []

    def build(runtime: Runtime) -> Sequence[Registration]:
        from services.risk.server import registrations_for

        app = RiskApp(runtime, config, GrpcLedgerReviews(f"127.0.0.1:{ledger_port}", Tokens(key)))
        holder.append(app)
        return registrations_for(app)(runtime)

    server = await start_test_server(config_for_tests("risk", database_url, redis_url), build, static_verifier(key))
    app = holder[0]
    server.runtime.background_tasks.append(asyncio.create_task(app.recorder.run()))
    return server, app


@pytest.fixture(scope="module")
async def risk_stack(risk_database: str, redis_server_url: str) -> AsyncIterator[RiskStack]:
    key = SigningKey()
    fake = FakeLedger()

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        return [Registration(LEDGER, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, fake)]

    ledger_server = await start_test_server(
        config_for_tests("ledger", risk_database, redis_server_url), build_ledger, static_verifier(key)
    )
    suffix = uuid.uuid4().hex[:8]
    config = RiskConfig(ledger_events_stream=f"test.ledger.events.{suffix}", consumer_group=f"risk-{suffix}")
    server, app = await start_risk(risk_database, redis_server_url, key, ledger_server.port, config)
    redis = redis_asyncio.Redis.from_url(redis_server_url)
    consumer = app.consumer()
    await consumer.ensure_group()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield RiskStack(
            app=app,
            server=server,
            stub=risk_service_pb2_grpc.RiskServiceStub(channel),
            channel=channel,
            tokens=Tokens(key),
            ledger=fake,
            redis=redis,
            consumer=consumer,
            config=config,
            database_url=risk_database,
            ledger_port=ledger_server.port,
        )
    finally:
        await channel.close()
        await server.stop()
        await ledger_server.stop()
        await redis.delete(config.ledger_events_stream)
        await redis.aclose()


@pytest.fixture(scope="module")
async def replica(risk_stack: RiskStack, redis_server_url: str) -> AsyncIterator[Any]:
    """A stub for a second risk replica on the same database and Redis (rules and lists must reach it)."""
    server, _ = await start_risk(
        risk_stack.database_url, redis_server_url, risk_stack.tokens.key, risk_stack.ledger_port, risk_stack.config
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield risk_service_pb2_grpc.RiskServiceStub(channel)
    finally:
        await channel.close()
        await server.stop()
