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
from services.kit.errors import FailedPrecondition, NotFound, Unavailable
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.migrations import apply_migrations
from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.request_context import current_principal
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.consumer import LedgerEventConsumer
from services.risk.contacts_client import GrpcComplaintNotifier
from services.risk.ledger_client import GrpcComplaintLedger, GrpcLedgerReviews
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_notifications_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
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
CONTACTS = contacts_service_pb2.DESCRIPTOR.services_by_name["ContactsService"].full_name
# What risk's platform client holds in production (devstack/platform_clients.py).
RISK_PLATFORM_SCOPES = (
    "ledger.reviews.approve ledger.transfers.read ledger.accounts.read ledger.reversals.write"
    " contacts.notifications.write"
)


class ReversalExceeds(FailedPrecondition):
    reason = "REVERSAL_EXCEEDS_ORIGINAL"


@dataclass
class FakeLedger(ledger_service_pb2_grpc.LedgerServiceServicer):
    """ResolveTransferReview, recording what it was asked (``fail_next`` makes calls answer UNAVAILABLE); and for
    complaints GetTransfer/GetAccount over transfers a test adds, and ReverseTransfer (idempotent by id, never more
    than was posted; ``fail_reversals`` makes the next ones answer UNAVAILABLE)."""

    calls: list[tuple[str, ledger_approvals_pb2.ResolveTransferReviewRequest]] = field(default_factory=list)
    fail_next: int = 0
    transfers: dict[tuple[str, str], ledger_transfers_pb2.Transfer] = field(default_factory=dict)
    account_customers: dict[tuple[str, str], str] = field(default_factory=dict)
    reversals: dict[tuple[str, str], ledger_transfers_pb2.ReverseTransferRequest] = field(default_factory=dict)
    fail_reversals: int = 0

    def add_transfer(
        self,
        org: str,
        *,
        debit_customer: str,
        credit_customer: str = "",
        amount_minor: int = 10_000,
        card_id: str = "",
        card_named: bool = True,
    ) -> str:
        """A POSTED transfer; with ``card_id`` a card payment (naming its card unless ``card_named`` is False)."""
        transfer_id, debit, credit = (str(uuid.uuid4()) for _ in range(3))
        self.account_customers[(org, debit)] = debit_customer
        self.account_customers[(org, credit)] = credit_customer
        self.transfers[(org, transfer_id)] = ledger_transfers_pb2.Transfer(
            transfer_id=transfer_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            posted_amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            status=ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
            kind=ledger_transfers_pb2.TRANSFER_KIND_CARD_PAYMENT
            if card_id
            else ledger_transfers_pb2.TRANSFER_KIND_STANDARD,
            card_id=card_id if card_named else "",
        )
        return transfer_id

    def reversed_minor(self, org: str, transfer_id: str) -> int:
        return sum(
            request.amount.amount_minor
            for (reversal_org, _), request in self.reversals.items()
            if reversal_org == org and request.original_transfer_id == transfer_id
        )

    @staticmethod
    def _org() -> str:
        principal = current_principal()
        assert principal is not None
        return principal.organization_id

    async def GetTransfer(
        self, request: ledger_transfers_pb2.GetTransferRequest, context: Any
    ) -> ledger_transfers_pb2.GetTransferResponse:
        transfer = self.transfers.get((self._org(), request.transfer_id))
        if transfer is None:
            raise NotFound("transfer not found")
        return ledger_transfers_pb2.GetTransferResponse(transfer=transfer)

    async def GetAccount(
        self, request: ledger_accounts_pb2.GetAccountRequest, context: Any
    ) -> ledger_accounts_pb2.GetAccountResponse:
        customer = self.account_customers.get((self._org(), request.account_id))
        if customer is None:
            raise NotFound("account not found")
        account = ledger_accounts_pb2.Account(account_id=request.account_id, customer_id=customer)
        return ledger_accounts_pb2.GetAccountResponse(account=account)

    async def ReverseTransfer(
        self, request: ledger_transfers_pb2.ReverseTransferRequest, context: Any
    ) -> ledger_transfers_pb2.ReverseTransferResponse:
        if self.fail_reversals > 0:
            self.fail_reversals -= 1
            raise Unavailable("ledger is restarting")
        org = self._org()
        original = self.transfers.get((org, request.original_transfer_id))
        if original is None:
            raise NotFound("transfer not found")
        reversal = ledger_transfers_pb2.Transfer(
            transfer_id=request.transfer_id, reversal_of_transfer_id=request.original_transfer_id
        )
        if (org, request.transfer_id) in self.reversals:
            return ledger_transfers_pb2.ReverseTransferResponse(transfer=reversal, original_transfer=original)
        left = original.posted_amount.amount_minor - self.reversed_minor(org, request.original_transfer_id)
        if request.amount.amount_minor > left:
            raise ReversalExceeds("the amount exceeds what is left to reverse")
        self.reversals[(org, request.transfer_id)] = request
        return ledger_transfers_pb2.ReverseTransferResponse(transfer=reversal, original_transfer=original)

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


@dataclass
class FakeContacts(contacts_service_pb2_grpc.ContactsServiceServicer):
    """Only SendNotification: records each notification id once (as the vault sends at most once per id);
    ``fail_next`` makes calls answer UNAVAILABLE."""

    sent: dict[str, tuple[str, contacts_notifications_pb2.SendNotificationRequest]] = field(default_factory=dict)
    fail_next: int = 0

    async def SendNotification(
        self, request: contacts_notifications_pb2.SendNotificationRequest, context: Any
    ) -> contacts_notifications_pb2.SendNotificationResponse:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise Unavailable("contacts is restarting")
        principal = current_principal()
        assert principal is not None
        self.sent.setdefault(request.notification_id, (principal.organization_id, request))
        notification = contacts_notifications_pb2.Notification(
            notification_id=request.notification_id, status=contacts_notifications_pb2.NOTIFICATION_STATUS_SENT
        )
        return contacts_notifications_pb2.SendNotificationResponse(notification=notification)

    def to_customer(self, customer_id: str) -> list[contacts_notifications_pb2.SendNotificationRequest]:
        return [request for _, request in self.sent.values() if request.customer_id == customer_id]


@dataclass
class MovableClock:
    """Risk's clock in these tests: the real time plus an offset a test moves (and puts back)."""

    offset_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


class Tokens:
    """Mints the tokens the ledger (service account) and staff would present."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    async def token_for(self, organization_id: str) -> str:
        return self.key.mint(pty="service", roles=[], scope=RISK_PLATFORM_SCOPES, org=organization_id)

    def customer(self, org: str, customer_id: str) -> str:
        return self.key.mint(org=org, sub=customer_id, pty="customer", roles=["customer"])

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
    contacts: FakeContacts
    clock: MovableClock
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
    database_url: str,
    redis_url: str,
    key: SigningKey,
    ledger_port: int,
    config: RiskConfig,
    clock: MovableClock | None = None,
) -> tuple[WalletServer, RiskApp]:
    """Risk with its ledger and contacts clients pointed at ``ledger_port`` (where the fakes of both listen)."""
    holder: list[RiskApp] = []

    def build(runtime: Runtime) -> Sequence[Registration]:
        from services.risk.server import registrations_for

        edge = f"127.0.0.1:{ledger_port}"
        app = RiskApp(
            runtime,
            config,
            GrpcLedgerReviews(edge, Tokens(key)),
            complaint_ledger=GrpcComplaintLedger(edge, Tokens(key)),
            notifier=GrpcComplaintNotifier(edge, Tokens(key)),
            clock=clock or time.time,
        )
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
    contacts = FakeContacts()
    clock = MovableClock()

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        return [
            Registration(LEDGER, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, fake),
            Registration(CONTACTS, contacts_service_pb2_grpc.add_ContactsServiceServicer_to_server, contacts),
        ]

    ledger_server = await start_test_server(
        config_for_tests("ledger", risk_database, redis_server_url), build_ledger, static_verifier(key)
    )
    suffix = uuid.uuid4().hex[:8]
    config = RiskConfig(ledger_events_stream=f"test.ledger.events.{suffix}", consumer_group=f"risk-{suffix}")
    server, app = await start_risk(risk_database, redis_server_url, key, ledger_server.port, config, clock)
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
            contacts=contacts,
            clock=clock,
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
