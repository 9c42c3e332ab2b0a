"""Loyalty points end to end: earn rules over the RPCs, the ledger's own outbox relayed to Redis Streams, the
consumer group awarding points into the customer's points account, exactly once even when an event is redelivered,
and redemption as a normal transfer."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as redis_asyncio

from services.kit.outbox import OutboxRelay, decode_entry
from services.kit.status import ErrorDetails
from services.kit.stream_consumer import StreamConsumer
from services.ledger.domain_loyalty import points_account_id
from services.ledger.events import LEDGER_EVENTS_STREAM
from services.ledger.loyalty_consumer import loyalty_consumer
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_assets_pb2 as pb
from wallet.ledger.v1 import ledger_events_pb2
from wallet.ledger.v1 import ledger_invoices_pb2 as invoices_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration

WAIT_S = 20.0
STREAM_TAIL_MAX = 10_000


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


@pytest.fixture
async def consumer(ledger: LedgerHarness) -> AsyncIterator[StreamConsumer]:
    """The ledger's relay publishing this database's outbox, and a loyalty consumer in a group of its own (the Redis
    is shared with other test runs), created before the test's transfers so it sees them."""
    redis = redis_asyncio.Redis.from_url(ledger.redis_url)
    group_consumer = loyalty_consumer(redis, ledger.app.loyalty, group=f"test-loyalty-{uuid.uuid4().hex}")
    await group_consumer.ensure_group()
    relay = asyncio.create_task(
        OutboxRelay(f"ledger-test-{uuid.uuid4().hex[:8]}", ledger.app.runtime.pool, redis, poll_interval_s=0.05).run()
    )
    try:
        yield group_consumer
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await redis.aclose()


class Shop:
    """A tenant with a PTS asset, a funded points pool, a merchant and one customer with a EUR wallet."""

    def __init__(self, ledger: LedgerHarness) -> None:
        self.ledger = ledger
        self.org = str(uuid.uuid4())
        self.customer = str(uuid.uuid4())
        self.rule_id = str(uuid.uuid4())

    async def setup(self) -> None:
        await self.ledger.stub.DefineAsset(
            pb.DefineAssetRequest(asset_code="PTS", scale=0, display_name="Points"), metadata=self.owner()
        )
        self.pool = await self.ledger.open("PTS", org=self.org)
        await self.ledger.fund(self.pool, 1_000_000, "PTS", org=self.org)
        self.merchant = await self.ledger.open(org=self.org)
        self.merchant_points = await self.ledger.open("PTS", org=self.org)
        self.wallet = await self.ledger.open(
            kind=accounts_pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=self.customer, org=self.org
        )
        await self.ledger.fund(self.wallet, 100_000, org=self.org)

    def owner(self) -> tuple[tuple[str, str], ...]:
        return self.ledger.auth(org=self.org)

    def as_customer(self) -> tuple[tuple[str, str], ...]:
        return self.ledger.customer_auth(self.customer, org=self.org)

    def rule(self, **overrides: Any) -> pb.EarnRule:
        fields: dict[str, Any] = {
            "earn_rule_id": self.rule_id,
            "asset_code": "PTS",
            "spend_currency": "EUR",
            "transfer_kinds": [transfers_pb.TRANSFER_KIND_STANDARD, transfers_pb.TRANSFER_KIND_INVOICE_PAYMENT],
            "points_per_step": 1,
            "spend_step_minor": 100,
            "funding_account_id": self.pool,
        }
        fields.update(overrides)
        return pb.EarnRule(**fields)

    async def set_rules(self, *rules: pb.EarnRule) -> pb.SetEarnRulesResponse:
        response: pb.SetEarnRulesResponse = await self.ledger.stub.SetEarnRules(
            pb.SetEarnRulesRequest(earn_rules=list(rules), request_id=str(uuid.uuid4())), metadata=self.owner()
        )
        return response

    async def spend(self, amount_minor: int) -> transfers_pb.Transfer:
        response = await self.ledger.stub.CreateTransfer(
            transfers_pb.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=self.wallet,
                credit_account_id=self.merchant,
                amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            ),
            metadata=self.as_customer(),
        )
        transfer: transfers_pb.Transfer = response.transfer
        return transfer

    @property
    def points_account(self) -> str:
        return str(points_account_id(uuid.UUID(self.org), uuid.UUID(self.customer), "PTS"))

    async def points(self) -> int:
        async with self.ledger.app.runtime.pool.acquire() as connection:
            credits = await connection.fetchval(
                "SELECT posted_credits_minor - posted_debits_minor FROM accounts WHERE account_id = $1",
                uuid.UUID(self.points_account),
            )
        return int(credits or 0)

    async def awards(self) -> int:
        async with self.ledger.app.runtime.pool.acquire() as connection:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM transfers WHERE organization_id = $1 AND kind = $2",
                    uuid.UUID(self.org),
                    int(transfers_pb.TRANSFER_KIND_LOYALTY_EARN),
                )
            )


async def _consume_until(consumer: StreamConsumer, done: Any) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "the consumer did not get there in time"
        await consumer.consume_once(block_ms=100)


async def _posted_entry(redis_url: str, transfer_id: str) -> dict[bytes, bytes]:
    redis = redis_asyncio.Redis.from_url(redis_url)
    try:
        entries = await redis.xrevrange(LEDGER_EVENTS_STREAM, "+", "-", count=STREAM_TAIL_MAX)
    finally:
        await redis.aclose()
    for _, fields in entries:
        envelope = decode_entry(fields)
        if envelope.event_type != ledger_events_pb2.TransferPosted.DESCRIPTOR.full_name:
            continue
        posted = ledger_events_pb2.TransferPosted()
        envelope.payload.Unpack(posted)
        if posted.transfer.transfer_id == transfer_id:
            return dict(fields)
    raise AssertionError("the TransferPosted event is not in the stream")


async def test_rules_set_get_and_bad_rules(ledger: LedgerHarness) -> None:
    shop = Shop(ledger)
    await shop.setup()
    set_response = await shop.set_rules(shop.rule())
    read = await ledger.stub.GetEarnRules(pb.GetEarnRulesRequest(), metadata=shop.owner())
    assert list(read.earn_rules) == list(set_response.earn_rules)
    assert read.earn_rules[0].points_per_step == 1
    usd_pool = await ledger.open("USD", org=shop.org)
    cases = [
        (shop.rule(asset_code="ZZZ"), "earn_rules[0].asset_code"),
        (shop.rule(transfer_kinds=[]), "earn_rules[0].transfer_kinds"),
        (shop.rule(transfer_kinds=[transfers_pb.TRANSFER_KIND_LOYALTY_EARN]), "earn_rules[0].transfer_kinds"),
        (shop.rule(spend_step_minor=0), "earn_rules[0].spend_step_minor"),
        (shop.rule(points_per_step=-1), "earn_rules[0].points_per_step"),
        (shop.rule(funding_account_id=usd_pool), "earn_rules[0].funding_account_id"),
        (shop.rule(funding_account_id=shop.wallet), "earn_rules[0].funding_account_id"),
    ]
    for rule, field in cases:
        details = await _error(
            ledger.stub.SetEarnRules(
                pb.SetEarnRulesRequest(earn_rules=[rule], request_id=str(uuid.uuid4())), metadata=shop.owner()
            )
        )
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in {v.field for v in details.field_violations}, field
    duplicate = await _error(
        ledger.stub.SetEarnRules(
            pb.SetEarnRulesRequest(earn_rules=[shop.rule(), shop.rule()], request_id=str(uuid.uuid4())),
            metadata=shop.owner(),
        )
    )
    assert "earn_rules[1].earn_rule_id" in {v.field for v in duplicate.field_violations}
    customer_sets = await _error(
        ledger.stub.SetEarnRules(
            pb.SetEarnRulesRequest(earn_rules=[], request_id=str(uuid.uuid4())), metadata=shop.as_customer()
        )
    )
    assert customer_sets.code == grpc.StatusCode.PERMISSION_DENIED


async def test_posted_spend_earns_points_exactly_once_even_when_redelivered(
    ledger: LedgerHarness, consumer: StreamConsumer
) -> None:
    shop = Shop(ledger)
    await shop.setup()
    await shop.set_rules(shop.rule())
    spent = await shop.spend(250)

    async def two_points() -> bool:
        return await shop.points() == 2

    await _consume_until(consumer, two_points)
    assert await shop.awards() == 1
    # The relay may publish an event twice (at least once): the same envelope again is a replay, not a new award.
    fields = await _posted_entry(ledger.redis_url, spent.transfer_id)
    redis = redis_asyncio.Redis.from_url(ledger.redis_url)
    try:
        await redis.xadd(LEDGER_EVENTS_STREAM, fields)  # type: ignore[arg-type]
    finally:
        await redis.aclose()
    drained = 0
    for _ in range(50):
        handled = await consumer.consume_once(block_ms=200)
        drained += handled
        if not handled:
            break
    assert drained >= 1
    assert await shop.points() == 2
    assert await shop.awards() == 1
    # Less than one step earns nothing; each full step earns its points.
    await shop.spend(99)
    await shop.spend(1_000)

    async def twelve_points() -> bool:
        return await shop.points() == 12

    await _consume_until(consumer, twelve_points)
    assert await shop.awards() == 2


async def test_invoice_payment_earns_and_points_redeem_as_a_normal_transfer(
    ledger: LedgerHarness, consumer: StreamConsumer
) -> None:
    shop = Shop(ledger)
    await shop.setup()
    await shop.set_rules(shop.rule(points_per_step=5, spend_step_minor=1_000))
    create = invoices_pb.CreateInvoiceRequest(
        invoice_id=str(uuid.uuid4()),
        payee_account_id=shop.merchant,
        amount=money_pb2.Money(currency="EUR", amount_minor=4_500),
        payer_customer_id=shop.customer,
    )
    create.due_at.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    invoice = (await ledger.stub.CreateInvoice(create, metadata=shop.owner())).invoice
    await ledger.stub.PayInvoice(
        invoices_pb.PayInvoiceRequest(
            transfer_id=str(uuid.uuid4()), invoice_id=invoice.invoice_id, debit_account_id=shop.wallet
        ),
        metadata=shop.as_customer(),
    )

    async def twenty_points() -> bool:
        return await shop.points() == 20

    await _consume_until(consumer, twenty_points)
    account = await ledger.stub.GetAccount(
        accounts_pb.GetAccountRequest(account_id=shop.points_account), metadata=shop.as_customer()
    )
    assert account.account.customer_id == shop.customer
    assert account.account.currency == "PTS"
    redeemed = await ledger.stub.CreateTransfer(
        transfers_pb.CreateTransferRequest(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=shop.points_account,
            credit_account_id=shop.merchant_points,
            amount=money_pb2.Money(currency="PTS", amount_minor=15),
        ),
        metadata=shop.as_customer(),
    )
    assert redeemed.transfer.status == transfers_pb.TRANSFER_STATUS_POSTED
    assert await shop.points() == 5
    too_many = await _error(
        ledger.stub.CreateTransfer(
            transfers_pb.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=shop.points_account,
                credit_account_id=shop.merchant_points,
                amount=money_pb2.Money(currency="PTS", amount_minor=6),
            ),
            metadata=shop.as_customer(),
        )
    )
    assert too_many.reason == "INSUFFICIENT_FUNDS"
