"""PayByPhone end to end: a real ledger and a real contacts vault (each on port 0 with its own database, the same
Redis), the ledger resolving through contacts.ResolvePhone with a service token; a hit pays the payee's default
account once (idempotent by transfer id), every kind of miss answers alike, refusals that do not depend on the payee
come before the lookup, and every answer waits for the same response floor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as redis_asyncio

from services.contacts.alert_consumers import alert_consumers
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.outbox import STREAM_ENTRY_FIELD
from services.kit.status import ErrorDetails
from services.kit.testing import config_for_tests, start_test_server, static_verifier
from services.ledger.app import LedgerApp
from services.ledger.contacts_client import DIRECTORY_SCOPE, GrpcPayeeDirectory
from services.ledger.server import registrations_for
from services.ledger.service_pay_by_phone import PayByPhoneService
from tests.integration.contacts.conftest import Vault, start_vault, stop_vault, vault_environ
from tests.integration.contacts.test_contacts import store_request
from tests.integration.contacts.test_subjects_and_secrets import outbox
from tests.integration.ledger.conftest import drop_database, migrated_database
from tests.integration.ledger.test_risk_gate import ServiceTokens
from wallet.common.v1 import events_pb2, money_pb2
from wallet.contacts.v1 import contacts_access_log_pb2 as log_pb
from wallet.contacts.v1 import contacts_contact_pb2 as contact_pb
from wallet.contacts.v1 import contacts_directory_pb2 as directory_pb
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_events_pb2, ledger_service_pb2_grpc, ledger_transfers_pb2

pytestmark = pytest.mark.integration

CUSTOMER_WALLET = ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET
SUSPENSE = ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE
FLOOR_S = 0.25


class FloorRecorder:
    """Stands in for the clock and sleep of the response floor: time stands still, so every call must sleep the
    whole floor, and the test sees each sleep (no wall-clock assertion)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def monotonic_s(self) -> float:
        return 1_000.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@dataclass
class Suite:
    vault: Vault
    ledger: Any
    ledger_server: WalletServer
    floor: FloorRecorder
    ledger_database_url: str

    @property
    def org(self) -> str:
        return self.vault.organization_id

    def auth(self, **claims: Any) -> tuple[tuple[str, str], ...]:
        claims.setdefault("roles", ["owner"])
        return self.vault.token(**claims)

    def customer(self, customer_id: str) -> tuple[tuple[str, str], ...]:
        return self.auth(roles=["customer"], pty="customer", sub=customer_id)

    async def open(self, kind: int, *, customer_id: str = "", currency: str = "EUR") -> str:
        account_id = str(uuid.uuid4())
        await self.ledger.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=account_id, kind=kind, currency=currency, customer_id=customer_id
            ),
            metadata=self.auth(),
        )
        return account_id

    async def funded_payer(self, amount_minor: int = 100_000) -> tuple[str, str]:
        payer = str(uuid.uuid4())
        wallet = await self.open(CUSTOMER_WALLET, customer_id=payer)
        source = await self.open(SUSPENSE)
        await self.ledger.CreateTransfer(
            ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=source,
                credit_account_id=wallet,
                amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            ),
            metadata=self.auth(),
        )
        return payer, wallet

    async def payee(self, phone: str, *, discoverable: bool = True, currency: str = "EUR") -> tuple[str, str]:
        """A customer with a wallet in the ledger and a number in the vault, opted in (or not) with that wallet."""
        payee = str(uuid.uuid4())
        wallet = await self.open(CUSTOMER_WALLET, customer_id=payee, currency=currency)
        stored = await self.vault.stub.StoreContact(
            store_request(phone, "", purposes=[contact_pb.PURPOSE_PAYEE_LOOKUP]), metadata=self.vault.customer(payee)
        )
        if discoverable:
            await self.vault.stub.SetDiscoverability(
                directory_pb.SetDiscoverabilityRequest(
                    contact_id=stored.contact.contact_id,
                    discoverable=True,
                    default_account_id=wallet,
                    request_id=str(uuid.uuid4()),
                ),
                metadata=self.vault.customer(payee),
            )
        return payee, wallet

    async def pay(
        self, payer: str, wallet: str, phone: str, amount_minor: int, transfer_id: str = "", currency: str = "EUR"
    ) -> ledger_transfers_pb2.PayByPhoneResponse | ErrorDetails:
        request = ledger_transfers_pb2.PayByPhoneRequest(
            transfer_id=transfer_id or str(uuid.uuid4()),
            debit_account_id=wallet,
            phone_number=phone,
            amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
            reference="lunch",
        )
        try:
            response: ledger_transfers_pb2.PayByPhoneResponse = await self.ledger.PayByPhone(
                request, metadata=self.customer(payer)
            )
        except grpc.aio.AioRpcError as err:
            return ErrorDetails.from_rpc_error(err)
        return response

    async def available(self, account_id: str) -> int:
        response = await self.ledger.GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=self.auth()
        )
        return int(response.account.balance.available.amount_minor)


@pytest.fixture(scope="module")
async def suite(
    postgres_server_url: str, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Suite]:
    run_dir: Path = tmp_path_factory.mktemp("pay-by-phone-vault")
    vault = await start_vault(postgres_server_url, redis_server_url, run_dir, vault_environ(run_dir))
    ledger_url, ledger_db = await migrated_database(postgres_server_url)
    floor = FloorRecorder()
    directory = GrpcPayeeDirectory(f"127.0.0.1:{vault.server.port}", ServiceTokens(vault.key, DIRECTORY_SCOPE))

    apps: list[LedgerApp] = []

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        apps.append(LedgerApp(runtime, directory=directory))
        return registrations_for(apps[0])

    ledger_server = await start_test_server(
        config_for_tests("ledger", ledger_url, redis_server_url), build_ledger, static_verifier(vault.key)
    )
    app = apps[0]
    # The same use case the app builds, with the floor's clock and sleep observable (set before the first call).
    app.pay_by_phone = PayByPhoneService(
        ledger_server.runtime.pool,
        app.store,
        app.clock,
        app.committer,
        app.gate,
        directory,
        response_floor_s=FLOOR_S,
        monotonic_s=floor.monotonic_s,
        sleep=floor.sleep,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ledger_server.port}")
    try:
        yield Suite(vault, ledger_service_pb2_grpc.LedgerServiceStub(channel), ledger_server, floor, ledger_url)
    finally:
        await channel.close()
        await directory.close()
        await ledger_server.stop()
        await drop_database(postgres_server_url, ledger_db)
        await stop_vault(vault, postgres_server_url)


async def test_pays_the_payees_default_account_once_and_shows_them_masked(suite: Suite) -> None:
    payer, payer_wallet = await suite.funded_payer()
    payee, payee_wallet = await suite.payee("+86 139 5555 0001")
    transfer_id = str(uuid.uuid4())
    paid = await suite.pay(payer, payer_wallet, "+86 139-5555-0001", 2_500, transfer_id)
    assert isinstance(paid, ledger_transfers_pb2.PayByPhoneResponse)
    assert paid.masked_phone_number == "+86 139****0001"
    assert paid.transfer.credit_account_id == payee_wallet
    assert paid.transfer.kind == ledger_transfers_pb2.TRANSFER_KIND_PAY_BY_PHONE
    assert paid.transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    again = await suite.pay(payer, payer_wallet, "+86 139 5555 0001", 2_500, transfer_id)
    assert isinstance(again, ledger_transfers_pb2.PayByPhoneResponse)
    assert again.transfer == paid.transfer
    assert await suite.available(payer_wallet) == 100_000 - 2_500
    assert await suite.available(payee_wallet) == 2_500
    # The vault logged both lookups against the payer, the ledger acting for them.
    log = await suite.vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=suite.vault.customer(payee))
    assert [(e.action, e.on_behalf_of_principal_id) for e in log.entries] == [
        (log_pb.ACCESS_ACTION_RESOLVE, payer)
    ] * 2


async def test_unknown_hidden_and_unpayable_numbers_answer_alike_and_move_nothing(suite: Suite) -> None:
    payer, payer_wallet = await suite.funded_payer()
    await suite.payee("+86 139 5555 0002", discoverable=False)
    await suite.payee("+86 139 5555 0003", currency="USD")  # opted in, but no EUR account
    misses = [
        await suite.pay(payer, payer_wallet, number, 1_000)
        for number in ("+86 139 5555 0009", "+86 139 5555 0002", "+86 139 5555 0003")
    ]
    assert all(isinstance(miss, ErrorDetails) for miss in misses)
    assert {(m.code, m.reason, m.message) for m in misses if isinstance(m, ErrorDetails)} == {
        (grpc.StatusCode.NOT_FOUND, "NOT_FOUND", "payee not found")
    }
    assert await suite.available(payer_wallet) == 100_000


async def test_payer_side_refusals_come_before_the_lookup_and_do_not_depend_on_the_number(suite: Suite) -> None:
    payer, payer_wallet = await suite.funded_payer(amount_minor=1_000)
    await suite.payee("+86 139 5555 0004")
    for number in ("+86 139 5555 0004", "+86 139 5555 0008"):
        broke = await suite.pay(payer, payer_wallet, number, 5_000)
        assert isinstance(broke, ErrorDetails)
        assert (broke.code, broke.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
        _, someone_elses = await suite.funded_payer()
        foreign = await suite.pay(payer, someone_elses, number, 100)
        assert isinstance(foreign, ErrorDetails)
        assert foreign.code == grpc.StatusCode.NOT_FOUND
        assert foreign.metadata.get("field") == "debit_account_id"
    bad = await suite.pay(payer, payer_wallet, "12", 100)
    assert isinstance(bad, ErrorDetails)
    assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PHONE_NUMBER_INVALID")
    assert [v.field for v in bad.field_violations] == ["phone_number"]
    assert "12" not in bad.message
    invalid = await suite.pay(payer, "not-a-uuid", "", 0)
    assert isinstance(invalid, ErrorDetails)
    assert {v.field for v in invalid.field_violations} >= {"debit_account_id", "phone_number", "amount.amount_minor"}


async def test_every_answer_waits_for_the_same_floor(suite: Suite) -> None:
    payer, payer_wallet = await suite.funded_payer()
    await suite.payee("+86 139 5555 0005")
    suite.floor.sleeps.clear()
    hit = await suite.pay(payer, payer_wallet, "+86 139 5555 0005", 100)
    miss = await suite.pay(payer, payer_wallet, "+86 139 5555 0006", 100)
    refused = await suite.pay(payer, payer_wallet, "+86 139 5555 0005", 10_000_000)
    assert isinstance(hit, ledger_transfers_pb2.PayByPhoneResponse)
    assert isinstance(miss, ErrorDetails)
    assert isinstance(refused, ErrorDetails)
    assert suite.floor.sleeps == [FLOOR_S, FLOOR_S, FLOOR_S]


async def test_the_ledgers_posted_event_alerts_the_payee_once_through_the_vaults_consumer(
    suite: Suite, redis_client: redis_asyncio.Redis
) -> None:
    # Issue 8's transaction alert across the real services: the ledger's own outbox row for the payment (as its relay
    # would publish it, twice: at least once) is consumed by the vault's alert consumer, which texts the payee once.
    payer, payer_wallet = await suite.funded_payer()
    payee = str(uuid.uuid4())
    payee_wallet = await suite.open(CUSTOMER_WALLET, customer_id=payee)
    stored = await suite.vault.stub.StoreContact(
        store_request(
            "+86 139 5555 0007",
            "",
            purposes=[contact_pb.PURPOSE_PAYEE_LOOKUP, contact_pb.PURPOSE_TRANSACTION_ALERTS],
            alert_thresholds=[money_pb2.Money(currency="EUR", amount_minor=1_000)],
        ),
        metadata=suite.vault.customer(payee),
    )
    await suite.vault.stub.SetDiscoverability(
        directory_pb.SetDiscoverabilityRequest(
            contact_id=stored.contact.contact_id,
            discoverable=True,
            default_account_id=payee_wallet,
            request_id=str(uuid.uuid4()),
        ),
        metadata=suite.vault.customer(payee),
    )
    paid = await suite.pay(payer, payer_wallet, "+86 139 5555 0007", 1_250)
    assert isinstance(paid, ledger_transfers_pb2.PayByPhoneResponse)
    stream = f"test.pay-by-phone.events.{uuid.uuid4().hex[:8]}"
    assert suite.vault.app.vault is not None
    consumer, _ = alert_consumers(
        redis_client, suite.vault.app.vault.alerts, ledger_stream=stream, auth_stream=stream + ".auth", start_id="0"
    )
    try:
        await consumer.ensure_group()
        envelope = await _posted_envelope(suite.ledger_database_url, paid.transfer.transfer_id)
        for _ in range(2):
            await redis_client.xadd(stream, {STREAM_ENTRY_FIELD: envelope})
        assert await consumer.consume_once() == 2
    finally:
        await redis_client.delete(stream, stream + ".auth")
    texts = [m["body"] for m in outbox(suite.vault) if m["to"] == "+8613955550007"]
    assert texts == [f"Wallet: received 12.50 EUR ({paid.transfer.transfer_id[:8]})."]


async def _posted_envelope(database_url: str, transfer_id: str) -> bytes:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT envelope FROM outbox ORDER BY id")
    finally:
        await connection.close()
    for row in rows:
        envelope = events_pb2.EventEnvelope.FromString(row["envelope"])
        posted = ledger_events_pb2.TransferPosted()
        if envelope.payload.Unpack(posted) and posted.transfer.transfer_id == transfer_id:
            return bytes(row["envelope"])
    raise AssertionError("the ledger wrote no TransferPosted event for the payment")
