"""Virtual cards across two real services: the ledger (port 0) keeps cards and limits, the contacts vault (port 0)
generates and holds the number and CVV. Issue, reveal with step-up, freeze / unfreeze / close, card payments
(authorize, capture in part, release) with per-transaction and daily limits, and the card number found nowhere in
the ledger's database, logs or spans."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.grpc_server import Runtime
from services.kit.status import ErrorDetails
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from services.ledger.app import LedgerApp
from services.ledger.card_vault import CARD_SECRET_SCOPES, GrpcCardVault
from services.ledger.server import registrations_for
from tests.integration.contacts.conftest import Vault, start_vault, stop_vault, vault_environ
from tests.integration.ledger.conftest import LedgerHarness, drop_database, migrated_database
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_cards_pb2 as pb
from wallet.ledger.v1 import ledger_service_pb2_grpc
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration


class VaultTokens:
    """Stands in for auth's IssueServiceToken: the ledger's platform token for a tenant, signed with the key the
    vault trusts, carrying exactly the card-secret scopes."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    async def token_for(self, organization_id: str) -> str:
        return self._key.mint(
            org=organization_id, pty="service", roles=[], scope=" ".join(CARD_SECRET_SCOPES), sub="ledger-platform"
        )


@pytest.fixture(scope="module")
async def vault(
    postgres_server_url: str, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Vault]:
    run_dir: Path = tmp_path_factory.mktemp("cards-vault")
    running = await start_vault(postgres_server_url, redis_server_url, run_dir, vault_environ(run_dir))
    try:
        yield running
    finally:
        await stop_vault(running, postgres_server_url)


@pytest.fixture(scope="module")
async def ledger(postgres_server_url: str, redis_server_url: str, vault: Vault) -> AsyncIterator[LedgerHarness]:
    url, name = await migrated_database(postgres_server_url)
    key = SigningKey()
    card_vault = GrpcCardVault(f"127.0.0.1:{vault.server.port}", VaultTokens(vault.key))
    holder: dict[str, LedgerApp] = {}

    def build(runtime: Runtime) -> Any:
        holder["app"] = LedgerApp(runtime, card_vault=card_vault)
        return registrations_for(holder["app"])

    server = await start_test_server(config_for_tests("ledger", url, redis_server_url), build, static_verifier(key))
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
        await card_vault.close()
        await server.stop()
        await drop_database(postgres_server_url, name)


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency="EUR", amount_minor=amount_minor)


async def _pg_dump(database_url: str) -> bytes:
    """The ledger database as ``pg_dump`` writes it (a backup is what leaks when a number is stored by mistake)."""
    dumping = await asyncio.create_subprocess_exec(
        "pg_dump", "--data-only", "--dbname", database_url, stdout=asyncio.subprocess.PIPE
    )
    dump, _ = await dumping.communicate()
    assert dumping.returncode == 0
    return dump


def _luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


class Holder:
    def __init__(self, ledger: LedgerHarness) -> None:
        self.ledger = ledger
        self.customer = str(uuid.uuid4())

    def auth(self, *, step_up: bool = False) -> tuple[tuple[str, str], ...]:
        claims: dict[str, Any] = {}
        if step_up:
            claims.update(acr="mfa", auth_time=int(time.time()))
        return self.ledger.auth(roles=["customer"], pty="customer", sub=self.customer, **claims)

    def processor(self) -> tuple[tuple[str, str], ...]:
        return self.ledger.auth(roles=[], pty="service", scope="ledger.card_payments.write", sub="card-processor")

    async def setup(self, funds_minor: int = 100_000) -> None:
        self.wallet = await self.ledger.open(kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=self.customer)
        await self.ledger.fund(self.wallet, funds_minor)
        self.merchant = await self.ledger.open()

    async def issue(self, **limits: int) -> pb.Card:
        card_limits = pb.CardLimits(**{name: _eur(value) for name, value in limits.items()})
        response = await self.ledger.stub.IssueCard(
            pb.IssueCardRequest(card_id=str(uuid.uuid4()), account_id=self.wallet, limits=card_limits, label="web"),
            metadata=self.auth(),
        )
        card: pb.Card = response.card
        return card

    def authorize(self, card_id: str, amount_minor: int, transfer_id: str | None = None) -> Any:
        return self.ledger.stub.AuthorizeCardPayment(
            pb.AuthorizeCardPaymentRequest(
                transfer_id=transfer_id or str(uuid.uuid4()),
                card_id=card_id,
                merchant_account_id=self.merchant,
                amount=_eur(amount_minor),
                reference="order-9",
            ),
            metadata=self.processor(),
        )

    async def status(self, method: str, card_id: str) -> pb.Card:
        request_type = getattr(pb, f"{method}Request")
        response = await getattr(self.ledger.stub, method)(
            request_type(card_id=card_id, request_id=str(uuid.uuid4())), metadata=self.auth()
        )
        card: pb.Card = response.card
        return card

    def reveal(self, card_id: str, *, step_up: bool = True) -> Any:
        return self.ledger.stub.RevealCard(pb.RevealCardRequest(card_id=card_id), metadata=self.auth(step_up=step_up))


async def test_issue_and_reveal_through_the_vault(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    request = pb.IssueCardRequest(card_id=str(uuid.uuid4()), account_id=holder.wallet, label="web")
    card = (await ledger.stub.IssueCard(request, metadata=holder.auth())).card
    assert card.status == pb.CARD_STATUS_ACTIVE
    assert len(card.last_four) == 4
    assert card.customer_id == holder.customer
    assert (await ledger.stub.IssueCard(request, metadata=holder.auth())).card == card
    request.label = "other"
    reused = await _error(ledger.stub.IssueCard(request, metadata=holder.auth()))
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    operating = await _error(
        ledger.stub.IssueCard(
            pb.IssueCardRequest(card_id=str(uuid.uuid4()), account_id=holder.merchant), metadata=ledger.auth()
        )
    )
    assert operating.code == grpc.StatusCode.INVALID_ARGUMENT
    no_step_up = await _error(holder.reveal(card.card_id, step_up=False))
    assert no_step_up.reason == "STEP_UP_REQUIRED"
    revealed = await holder.reveal(card.card_id)
    assert len(revealed.card_number) == 16
    assert _luhn_valid(revealed.card_number)
    assert revealed.card_number.endswith(card.last_four)
    assert len(revealed.cvv) in (3, 4)
    assert (revealed.expiry_month, revealed.expiry_year) == (card.expiry_month, card.expiry_year)
    stranger = Holder(ledger)
    foreign = await _error(stranger.reveal(card.card_id))
    assert foreign.code == grpc.StatusCode.NOT_FOUND


async def test_frozen_and_closed_cards_neither_pay_nor_reveal(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue()
    frozen = await holder.status("FreezeCard", card.card_id)
    assert frozen.status == pb.CARD_STATUS_FROZEN
    refused = await _error(holder.authorize(card.card_id, 100))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.reason == "CARD_NOT_ACTIVE"
    hidden = await _error(holder.reveal(card.card_id))
    assert hidden.reason == "CARD_NOT_ACTIVE"
    assert (await holder.status("UnfreezeCard", card.card_id)).status == pb.CARD_STATUS_ACTIVE
    paid = await holder.authorize(card.card_id, 100)
    assert paid.transfer.status == transfers_pb.TRANSFER_STATUS_PENDING
    closed = await holder.status("CloseCard", card.card_id)
    assert closed.status == pb.CARD_STATUS_CLOSED
    assert (await _error(holder.reveal(card.card_id))).reason == "CARD_NOT_ACTIVE"
    assert (await _error(holder.authorize(card.card_id, 100))).reason == "CARD_NOT_ACTIVE"
    again = await _error(holder.status("UnfreezeCard", card.card_id))
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_card_payments_respect_per_transaction_and_daily_limits(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(per_transaction_limit=5_000, daily_limit=8_000)
    too_big = await _error(holder.authorize(card.card_id, 5_001))
    assert too_big.reason == "CARD_LIMIT_EXCEEDED"
    assert too_big.metadata["limit"] == "per_transaction"
    transfer_id = str(uuid.uuid4())
    first = await holder.authorize(card.card_id, 5_000, transfer_id)
    assert first.transfer.kind == transfers_pb.TRANSFER_KIND_CARD_PAYMENT
    assert first.transfer.debit_account_id == holder.wallet
    replay = await holder.authorize(card.card_id, 5_000, transfer_id)
    assert replay.transfer == first.transfer
    over_day = await _error(holder.authorize(card.card_id, 3_001))
    assert over_day.reason == "CARD_LIMIT_EXCEEDED"
    assert over_day.metadata["remaining_minor"] == "3000"
    captured = await ledger.stub.CaptureCardPayment(
        pb.CaptureCardPaymentRequest(transfer_id=transfer_id, amount=_eur(2_000), request_id=str(uuid.uuid4())),
        metadata=holder.processor(),
    )
    assert captured.transfer.status == transfers_pb.TRANSFER_STATUS_POSTED
    assert captured.transfer.posted_amount.amount_minor == 2_000
    second = await holder.authorize(card.card_id, 5_000)
    spent = (await ledger.stub.GetCard(pb.GetCardRequest(card_id=card.card_id), metadata=holder.auth())).card
    assert spent.daily_spent.amount_minor == 7_000
    released = await ledger.stub.ReleaseCardPayment(
        pb.ReleaseCardPaymentRequest(transfer_id=second.transfer.transfer_id, request_id=str(uuid.uuid4())),
        metadata=holder.processor(),
    )
    assert released.transfer.status == transfers_pb.TRANSFER_STATUS_VOIDED
    assert released.transfer.void_reason == transfers_pb.VOID_REASON_CARD_PAYMENT_RELEASED
    after = (await ledger.stub.GetCard(pb.GetCardRequest(card_id=card.card_id), metadata=holder.auth())).card
    assert after.daily_spent.amount_minor == 2_000
    balance = await ledger.balance(holder.wallet)
    assert balance.posted_debits_minor == 2_000
    assert balance.pending_debits_minor == 0
    # The customer cannot capture the processor's hold with the ordinary verbs either way round: the card payment
    # verbs need the processor's permission.
    customer_capture = await _error(
        ledger.stub.CaptureCardPayment(
            pb.CaptureCardPaymentRequest(transfer_id=transfer_id, request_id=str(uuid.uuid4())),
            metadata=holder.auth(),
        )
    )
    assert customer_capture.code == grpc.StatusCode.PERMISSION_DENIED


async def test_disputed_card_payment_is_partly_refunded_by_a_reversal(ledger: LedgerHarness) -> None:
    """Risk's complaints (a service account holding ``ledger.reversals.write``) upholds a dispute about a captured
    card payment with a partial refund. The refund does not give the card's daily spending back (docs/decisions.md)."""
    holder = Holder(ledger)
    await holder.setup(funds_minor=10_000)
    card = await holder.issue(daily_limit=6_000)
    authorized = await holder.authorize(card.card_id, 5_000)
    payment_id = authorized.transfer.transfer_id
    await ledger.stub.CaptureCardPayment(
        pb.CaptureCardPaymentRequest(transfer_id=payment_id, amount=_eur(4_000), request_id=str(uuid.uuid4())),
        metadata=holder.processor(),
    )
    complaints = ledger.auth(roles=[], pty="service", scope="ledger.reversals.write", sub="risk-complaints")
    complaint_id = str(uuid.uuid4())
    refund = transfers_pb.ReverseTransferRequest(
        transfer_id=str(uuid.uuid4()),
        original_transfer_id=payment_id,
        amount=_eur(1_500),
        reason=transfers_pb.REVERSAL_REASON_DISPUTE_UPHELD,
        complaint_id=complaint_id,
    )
    refunded = await ledger.stub.ReverseTransfer(refund, metadata=complaints)
    assert refunded.transfer.kind == transfers_pb.TRANSFER_KIND_REVERSAL
    assert refunded.transfer.reversal_of_transfer_id == payment_id
    assert (refunded.transfer.debit_account_id, refunded.transfer.credit_account_id) == (
        holder.merchant,
        holder.wallet,
    )
    assert refunded.original_transfer.kind == transfers_pb.TRANSFER_KIND_CARD_PAYMENT
    assert refunded.original_transfer.posted_amount.amount_minor == 4_000
    assert refunded.original_transfer.reversed_amount.amount_minor == 1_500
    assert (await ledger.balance(holder.wallet)).available.amount_minor == 10_000 - 4_000 + 1_500
    assert (await ledger.stub.ReverseTransfer(refund, metadata=complaints)).transfer == refunded.transfer
    over = await _error(
        ledger.stub.ReverseTransfer(
            transfers_pb.ReverseTransferRequest(
                transfer_id=str(uuid.uuid4()),
                original_transfer_id=payment_id,
                amount=_eur(2_501),
                reason=transfers_pb.REVERSAL_REASON_DISPUTE_UPHELD,
                complaint_id=complaint_id,
            ),
            metadata=complaints,
        )
    )
    assert (over.reason, over.metadata["remaining_minor"]) == ("REVERSAL_EXCEEDS_ORIGINAL", "2500")
    spent = (await ledger.stub.GetCard(pb.GetCardRequest(card_id=card.card_id), metadata=holder.auth())).card
    assert spent.daily_spent.amount_minor == 4_000
    # The customer cannot refund itself: reversals are a staff and service verb.
    customer = await _error(
        ledger.stub.ReverseTransfer(
            transfers_pb.ReverseTransferRequest(
                transfer_id=str(uuid.uuid4()),
                original_transfer_id=payment_id,
                reason=transfers_pb.REVERSAL_REASON_CUSTOMER_REQUEST,
            ),
            metadata=holder.auth(),
        )
    )
    assert customer.code == grpc.StatusCode.PERMISSION_DENIED


async def test_card_number_is_nowhere_in_the_ledger(
    ledger: LedgerHarness, span_exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    span_exporter.clear()
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(daily_limit=50_000)
    revealed = await holder.reveal(card.card_id)
    number = revealed.card_number
    payment = await holder.authorize(card.card_id, 1_000)
    await ledger.stub.CaptureCardPayment(
        pb.CaptureCardPaymentRequest(transfer_id=payment.transfer.transfer_id, request_id=str(uuid.uuid4())),
        metadata=holder.processor(),
    )
    await holder.status("CloseCard", card.card_id)
    dump = await _pg_dump(ledger.database_url)
    assert card.card_id.encode() in dump  # the dump really holds the card's row
    assert card.last_four.encode() in dump
    assert b"CardRevealed".hex().encode() in dump  # and the reveal's event, in the outbox (bytea, dumped as hex)
    assert number.encode() not in dump
    assert number.encode().hex().encode() not in dump  # inside a bytea column: the outbox's event envelopes
    log_text = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')} {record.exc_text or ''}" for record in caplog.records
    )
    assert number not in log_text
    spans = span_exporter.get_finished_spans()
    for traced in ("RevealCard", "RevealCardSecret", "AuthorizeCardPayment", "CaptureCardPayment"):
        assert any(span.name.endswith(f"/{traced}") for span in spans), traced  # each call was traced
    span_text = "\n".join(
        f"{span.name} {dict(span.attributes or {})} {span.status.description} "
        f"{[(event.name, dict(event.attributes or {})) for event in span.events]}"
        for span in spans
    )
    assert number not in span_text


async def test_list_cards_pages_by_account_and_status(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    issued = sorted([(await holder.issue()).card_id for _ in range(3)])
    await holder.status("FreezeCard", issued[0])
    seen: list[str] = []
    token = ""
    while True:
        page = await ledger.stub.ListCards(
            pb.ListCardsRequest(account_id=holder.wallet, page_size=2, page_token=token), metadata=holder.auth()
        )
        assert len(page.cards) <= 2
        seen += [c.card_id for c in page.cards]
        token = page.next_page_token
        if not token:
            break
    assert seen == issued
    active = await ledger.stub.ListCards(
        pb.ListCardsRequest(account_id=holder.wallet, status=pb.CARD_STATUS_ACTIVE), metadata=holder.auth()
    )
    assert [c.card_id for c in active.cards] == issued[1:]
    whole_tenant = await _error(ledger.stub.ListCards(pb.ListCardsRequest(), metadata=holder.auth()))
    assert whole_tenant.code == grpc.StatusCode.INVALID_ARGUMENT
    stranger = await _error(
        ledger.stub.ListCards(pb.ListCardsRequest(account_id=holder.wallet), metadata=Holder(ledger).auth())
    )
    assert stranger.code == grpc.StatusCode.NOT_FOUND
    expired = await _error(
        ledger.stub.ListCards(
            pb.ListCardsRequest(account_id=holder.wallet, status=pb.CARD_STATUS_EXPIRED), metadata=holder.auth()
        )
    )
    assert expired.code == grpc.StatusCode.INVALID_ARGUMENT
