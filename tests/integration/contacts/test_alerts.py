"""Alerts the vault sends from other services' events: transaction alerts for posted transfers at or above the
customer's threshold, lockout and new-device alerts, each at most once per event even when redelivered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis_asyncio
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.contacts.alert_consumers import alert_consumers
from services.contacts.alert_events import on_auth_event, on_ledger_event
from services.contacts.app import Vault as VaultObjects
from services.kit.outbox import STREAM_ENTRY_FIELD
from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import store_request
from tests.integration.contacts.test_subjects_and_secrets import outbox
from wallet.auth.v1 import auth_devices_pb2, auth_events_pb2, auth_identity_pb2
from wallet.common.v1 import events_pb2, money_pb2
from wallet.contacts.v1 import contacts_access_log_pb2 as log_pb
from wallet.contacts.v1 import contacts_contact_pb2 as pb
from wallet.ledger.v1 import ledger_events_pb2

pytestmark = pytest.mark.integration


def envelope(vault: Vault, payload: Message, event_id: str | None = None) -> events_pb2.EventEnvelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    return events_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=payload.DESCRIPTOR.full_name,
        organization_id=vault.organization_id,
        partition_key=str(uuid.uuid4()),
        occurred_at=occurred,
        payload=packed,
    )


def posted(debit_customer: str, credit_customer: str, amount_minor: int, currency: str = "EUR") -> Message:
    return ledger_events_pb2.TransferPosted(
        transfer=ledger_events_pb2.TransferFacts(
            transfer_id="0192f0aa-1111-7000-8000-000000000001",
            debit_account_id=str(uuid.uuid4()),
            credit_account_id=str(uuid.uuid4()),
            debit_customer_id=debit_customer,
            credit_customer_id=credit_customer,
            amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
        ),
        posted_amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
    )


def objects(vault: Vault) -> VaultObjects:
    assert vault.app.vault is not None
    return vault.app.vault


async def customer_with_threshold(vault: Vault, phone: str, threshold_minor: int | None) -> str:
    customer = str(uuid.uuid4())
    thresholds = [] if threshold_minor is None else [money_pb2.Money(currency="EUR", amount_minor=threshold_minor)]
    await vault.stub.StoreContact(
        store_request(phone, "", alert_thresholds=thresholds), metadata=vault.customer(customer)
    )
    return customer


def messages_to(vault: Vault, e164: str) -> list[str]:
    return [message["body"] for message in outbox(vault) if message["to"] == e164]


async def test_a_posted_transfer_alerts_both_sides_at_or_above_their_thresholds_once(vault: Vault) -> None:
    payer = await customer_with_threshold(vault, "+86 137 0000 0001", 10_000)
    payee = await customer_with_threshold(vault, "+86 137 0000 0002", 20_000)
    event = envelope(vault, posted(payer, payee, 10_000))
    assert await on_ledger_event(objects(vault).alerts, event) == 1  # the payee's threshold is not reached
    # Redelivery (the relay publishes at least once; a consumer may crash before acknowledging): nothing new.
    assert await on_ledger_event(objects(vault).alerts, event) == 0
    assert messages_to(vault, "+8613700000001") == ["Wallet: sent 100.00 EUR (0192f0aa)."]
    assert messages_to(vault, "+8613700000002") == []
    bigger = envelope(vault, posted(payer, payee, 25_050))
    assert await on_ledger_event(objects(vault).alerts, bigger) == 2
    assert messages_to(vault, "+8613700000002") == ["Wallet: received 250.50 EUR (0192f0aa)."]
    log = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(payer))
    assert [e.action for e in log.entries] == [log_pb.ACCESS_ACTION_NOTIFICATION] * 2
    assert {e.actor_principal_id for e in log.entries} == {"contacts:alerts"}


async def test_no_threshold_other_currency_or_no_alert_purpose_sends_nothing(vault: Vault) -> None:
    without = await customer_with_threshold(vault, "+86 137 0000 0003", None)
    support_only = str(uuid.uuid4())
    await vault.stub.StoreContact(
        store_request("+86 137 0000 0004", "", purposes=[pb.PURPOSE_SUPPORT]), metadata=vault.customer(support_only)
    )
    thresholded = await customer_with_threshold(vault, "+86 137 0000 0005", 1)
    for event in (
        posted(without, support_only, 1_000_000),
        posted(thresholded, "", 500, currency="USD"),
        ledger_events_pb2.TransferVoided(transfer=ledger_events_pb2.TransferFacts(debit_customer_id=thresholded)),
    ):
        assert await on_ledger_event(objects(vault).alerts, envelope(vault, event)) == 0
    sent_to = {message["to"] for message in outbox(vault)}
    assert not sent_to & {"+8613700000003", "+8613700000004", "+8613700000005"}


async def test_lockout_and_new_device_alert_the_customer_once(vault: Vault) -> None:
    customer = await customer_with_threshold(vault, "+86 137 0000 0006", None)
    locked_until = timestamp_pb2.Timestamp()
    locked_until.FromDatetime(datetime(2026, 11, 23, 10, 0, tzinfo=UTC) + timedelta(minutes=15))
    lockout = envelope(
        vault,
        auth_events_pb2.PrincipalLockedOut(
            principal_id=customer, scope=auth_events_pb2.LOCKOUT_SCOPE_PRINCIPAL, locked_until=locked_until
        ),
    )
    new_device = envelope(
        vault,
        auth_events_pb2.NewDeviceLogin(
            principal_id=customer,
            principal_kind=auth_identity_pb2.PRINCIPAL_KIND_CUSTOMER,
            platform=auth_devices_pb2.DEVICE_PLATFORM_ANDROID,
        ),
    )
    staff_device = envelope(
        vault,
        auth_events_pb2.NewDeviceLogin(principal_id=customer, principal_kind=auth_identity_pb2.PRINCIPAL_KIND_MEMBER),
    )
    for _ in range(2):
        await on_auth_event(objects(vault).alerts, lockout)
        await on_auth_event(objects(vault).alerts, new_device)
        await on_auth_event(objects(vault).alerts, staff_device)
    assert messages_to(vault, "+8613700000006") == [
        "Wallet: sign-in is locked until 2026-11-23 10:15 UTC.",
        "Wallet: new sign-in from Android at 2026-11-23 09:30 UTC.",
    ]


async def test_the_stream_consumer_sends_once_when_the_relay_publishes_an_event_twice(
    vault: Vault, redis_client: redis_asyncio.Redis
) -> None:
    payer = await customer_with_threshold(vault, "+86 137 0000 0007", 0)
    suffix = uuid.uuid4().hex[:8]
    ledger_stream, auth_stream = f"test.alerts.ledger.{suffix}", f"test.alerts.auth.{suffix}"
    ledger_consumer, _ = alert_consumers(
        redis_client, objects(vault).alerts, ledger_stream=ledger_stream, auth_stream=auth_stream, start_id="0"
    )
    event = envelope(vault, posted(payer, "", 1))
    try:
        await ledger_consumer.ensure_group()
        # At least once: the relay may publish the same event twice (a crash between XADD and DELETE).
        for _ in range(2):
            await redis_client.xadd(ledger_stream, {STREAM_ENTRY_FIELD: event.SerializeToString()})
        assert await ledger_consumer.consume_once() == 2  # both deliveries handled and acknowledged
        assert await ledger_consumer.consume_once() == 0
        assert messages_to(vault, "+8613700000007") == ["Wallet: sent 0.01 EUR (0192f0aa)."]
    finally:
        await redis_client.delete(ledger_stream, auth_stream)


async def test_a_card_reveal_alerts_the_holder_once_even_when_redelivered(vault: Vault) -> None:
    holder = await customer_with_threshold(vault, "+86 137 0000 0008", None)  # no threshold needed
    revealed = envelope(
        vault,
        ledger_events_pb2.CardRevealed(
            card_id=str(uuid.uuid4()), account_id=str(uuid.uuid4()), customer_id=holder, last_four="4242"
        ),
    )
    assert await on_ledger_event(objects(vault).alerts, revealed) == 1
    assert await on_ledger_event(objects(vault).alerts, revealed) == 0  # redelivered: not sent again
    assert messages_to(vault, "+8613700000008") == [
        "Wallet: the number of card ending 4242 was shown at 2026-11-23 09:30 UTC."
    ]
    log = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(holder))
    assert [e.action for e in log.entries if e.actor_principal_id == "contacts:alerts"] == [
        log_pb.ACCESS_ACTION_NOTIFICATION
    ]
