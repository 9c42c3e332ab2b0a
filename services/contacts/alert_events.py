"""Event envelopes → alerts: the handlers the vault's stream consumers call for ``wallet.ledger.v1.events`` (posted
transfers, card reveals) and ``wallet.auth.v1.events`` (lockouts, new-device sign-ins). Other event types are ignored.

A handler returns normally once every alert of the event is recorded (sent, or not wanted); it raises
``AlertNotDelivered`` when the SMS provider refused one, so the consumer leaves the event unacknowledged and it is
redelivered — alerts already recorded for it are then replays (same notification id) and are not sent again.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from uuid import UUID

from services.contacts.domain_alerts import (
    Alert,
    PostedTransfer,
    card_reveal_alert,
    lockout_alert,
    new_device_alert,
    transfer_alerts,
)
from services.contacts.service_alerts import AlertOutcome, AlertService
from wallet.auth.v1 import auth_devices_pb2, auth_events_pb2, auth_identity_pb2
from wallet.common.v1 import events_pb2
from wallet.ledger.v1 import ledger_events_pb2

TRANSFER_POSTED = ledger_events_pb2.TransferPosted.DESCRIPTOR.full_name
CARD_REVEALED = ledger_events_pb2.CardRevealed.DESCRIPTOR.full_name
PRINCIPAL_LOCKED_OUT = auth_events_pb2.PrincipalLockedOut.DESCRIPTOR.full_name
NEW_DEVICE_LOGIN = auth_events_pb2.NewDeviceLogin.DESCRIPTOR.full_name
UNKNOWN_PLATFORM = "an unknown device"
PLATFORM_NAMES = {
    auth_devices_pb2.DEVICE_PLATFORM_IOS: "iOS",
    auth_devices_pb2.DEVICE_PLATFORM_ANDROID: "Android",
    auth_devices_pb2.DEVICE_PLATFORM_WEB: "a web browser",
}


class AlertNotDelivered(Exception):
    """The SMS provider refused an alert; the event must be redelivered."""


def _uuid_or_none(text: str) -> UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _event_ids(envelope: events_pb2.EventEnvelope) -> tuple[UUID, UUID] | None:
    """(organization, event id); None for an envelope without them (nothing to dedupe by: ignored)."""
    organization_id = _uuid_or_none(envelope.organization_id)
    event_id = _uuid_or_none(envelope.event_id)
    if organization_id is None or event_id is None:
        return None
    return organization_id, event_id


async def _send_all(alerts: AlertService, planned: list[Alert]) -> int:
    sent = 0
    for alert in planned:
        outcome = await alerts.send(alert)
        if outcome is AlertOutcome.FAILED:
            raise AlertNotDelivered(alert.template.name)
        sent += outcome is AlertOutcome.SENT
    return sent


async def on_ledger_event(alerts: AlertService, envelope: events_pb2.EventEnvelope) -> int:
    """Transaction alerts for a posted transfer, the holder's alert for a card reveal; returns how many SMS this
    delivery sent."""
    ids = _event_ids(envelope)
    if ids is None:
        return 0
    if envelope.event_type == CARD_REVEALED:
        return await _on_card_revealed(alerts, envelope, ids)
    if envelope.event_type != TRANSFER_POSTED:
        return 0
    posted = ledger_events_pb2.TransferPosted()
    envelope.payload.Unpack(posted)
    facts = posted.transfer
    amount = posted.posted_amount if posted.HasField("posted_amount") else facts.amount
    if amount.amount_minor <= 0 or not amount.currency:
        return 0
    planned = transfer_alerts(
        PostedTransfer(
            organization_id=ids[0],
            event_id=ids[1],
            transfer_id=facts.transfer_id,
            debit_customer_id=_uuid_or_none(facts.debit_customer_id),
            credit_customer_id=_uuid_or_none(facts.credit_customer_id),
            currency=amount.currency,
            amount_minor=amount.amount_minor,
        )
    )
    return await _send_all(alerts, planned)


async def _on_card_revealed(alerts: AlertService, envelope: events_pb2.EventEnvelope, ids: tuple[UUID, UUID]) -> int:
    revealed = ledger_events_pb2.CardRevealed()
    envelope.payload.Unpack(revealed)
    customer_id = _uuid_or_none(revealed.customer_id)
    if customer_id is None:
        return 0
    occurred_at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
    alert = card_reveal_alert(ids[0], ids[1], customer_id, revealed.last_four, occurred_at)
    return 0 if alert is None else await _send_all(alerts, [alert])


async def on_auth_event(alerts: AlertService, envelope: events_pb2.EventEnvelope) -> int:
    """Security alerts: a principal's lockout and a customer's first sign-in from a new device. Staff members hold
    no contacts in the vault, so their events find no recipient."""
    ids = _event_ids(envelope)
    if ids is None:
        return 0
    organization_id, event_id = ids
    occurred_at = envelope.occurred_at.ToDatetime(tzinfo=UTC)
    if envelope.event_type == PRINCIPAL_LOCKED_OUT:
        locked = auth_events_pb2.PrincipalLockedOut()
        envelope.payload.Unpack(locked)
        customer_id = _uuid_or_none(locked.principal_id)
        if locked.scope != auth_events_pb2.LOCKOUT_SCOPE_PRINCIPAL or customer_id is None:
            return 0
        until = locked.locked_until.ToDatetime(tzinfo=UTC)
        return await _send_all(alerts, [lockout_alert(organization_id, event_id, customer_id, until)])
    if envelope.event_type == NEW_DEVICE_LOGIN:
        login = auth_events_pb2.NewDeviceLogin()
        envelope.payload.Unpack(login)
        customer_id = _uuid_or_none(login.principal_id)
        if login.principal_kind != auth_identity_pb2.PRINCIPAL_KIND_CUSTOMER or customer_id is None:
            return 0
        platform = PLATFORM_NAMES.get(login.platform, UNKNOWN_PLATFORM)
        return await _send_all(
            alerts, [new_device_alert(organization_id, event_id, customer_id, platform, occurred_at)]
        )
    return 0
