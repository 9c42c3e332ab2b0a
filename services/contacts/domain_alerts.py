"""Alerts the vault sends on its own, from other services' events: which customer gets which SMS for which fact.

Transaction alerts: a posted transfer alerts the debited customer ("sent") and the credited one ("received") when
the posted amount is at or above the threshold that customer set for that currency on a contact collected for
``TRANSACTION_ALERTS`` (no threshold for the currency: no alert). Security alerts: a customer's lockout and first
sign-in from a new device, and a reveal of one of their cards' number. Each alert's notification id is derived from the event id, the customer and the kind of
alert (UUIDv5), so a redelivered event maps onto the notification already recorded and is never sent twice.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.contacts.domain import Contact, Purpose
from services.contacts.domain_notifications import NotificationTemplate
from services.kit.currencies import format_minor_units, iso_currency

# Fixed namespace for alert notification ids: changing it would make redelivered events send again.
ALERT_NOTIFICATION_NAMESPACE = uuid.UUID("7d4f3c1e-9a62-4c55-8f0e-2b6a1d9e4c70")
# The principal the vault's own alert sender acts as, in the access log.
ALERT_SENDER_PRINCIPAL_ID = "contacts:alerts"
# Shown in an alert: enough of the transfer id for the customer to find it in their statement.
TRANSFER_REFERENCE_CHARS = 8
# A card is named in its reveal alert by the last digits of its number, no more.
CARD_LAST_DIGITS = 4


class AlertKind(enum.Enum):
    SENT = "sent"
    RECEIVED = "received"
    LOCKOUT = "lockout"
    NEW_DEVICE = "new_device"
    CARD_REVEAL = "card_reveal"


@dataclass(frozen=True, slots=True)
class Alert:
    """One SMS to send: to whom, with which template and parameters, under which notification id."""

    organization_id: UUID
    customer_id: UUID
    notification_id: UUID
    template: NotificationTemplate
    params: dict[str, str]
    # Transaction alerts only: the amount and currency the recipient's threshold is compared with.
    threshold_check: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class PostedTransfer:
    organization_id: UUID
    event_id: UUID
    transfer_id: str
    debit_customer_id: UUID | None
    credit_customer_id: UUID | None
    currency: str
    amount_minor: int


def alert_notification_id(event_id: UUID, customer_id: UUID, kind: AlertKind) -> UUID:
    return uuid.uuid5(ALERT_NOTIFICATION_NAMESPACE, f"{event_id}|{customer_id}|{kind.value}")


def display_amount(currency: str, amount_minor: int) -> str:
    """Decimal amount for ISO currencies; tenant assets (unknown scale here) in their minor units."""
    known = iso_currency(currency)
    return format_minor_units(amount_minor, known.scale if known is not None else 0)


def transfer_alerts(posted: PostedTransfer) -> list[Alert]:
    """The alerts a posted transfer may cause (each still subject to its recipient's threshold). A transfer between
    two accounts of one customer alerts once, as sent."""
    assert posted.amount_minor > 0
    parties: list[tuple[UUID, AlertKind]] = []
    if posted.debit_customer_id is not None:
        parties.append((posted.debit_customer_id, AlertKind.SENT))
    if posted.credit_customer_id is not None and posted.credit_customer_id != posted.debit_customer_id:
        parties.append((posted.credit_customer_id, AlertKind.RECEIVED))
    amount = display_amount(posted.currency, posted.amount_minor)
    reference = posted.transfer_id[:TRANSFER_REFERENCE_CHARS]
    return [
        Alert(
            organization_id=posted.organization_id,
            customer_id=customer_id,
            notification_id=alert_notification_id(posted.event_id, customer_id, kind),
            template=NotificationTemplate.TRANSACTION_ALERT,
            params={"direction": kind.value, "amount": amount, "currency": posted.currency, "reference": reference},
            threshold_check=(posted.currency, posted.amount_minor),
        )
        for customer_id, kind in parties
    ]


def lockout_alert(organization_id: UUID, event_id: UUID, customer_id: UUID, locked_until: datetime) -> Alert:
    return Alert(
        organization_id=organization_id,
        customer_id=customer_id,
        notification_id=alert_notification_id(event_id, customer_id, AlertKind.LOCKOUT),
        template=NotificationTemplate.LOCKOUT_ALERT,
        params={"locked_until": locked_until.strftime("%Y-%m-%d %H:%M UTC")},
    )


def new_device_alert(organization_id: UUID, event_id: UUID, customer_id: UUID, platform: str, at: datetime) -> Alert:
    return Alert(
        organization_id=organization_id,
        customer_id=customer_id,
        notification_id=alert_notification_id(event_id, customer_id, AlertKind.NEW_DEVICE),
        template=NotificationTemplate.NEW_DEVICE_ALERT,
        params={"platform": platform, "time": at.strftime("%Y-%m-%d %H:%M UTC")},
    )


def card_reveal_alert(
    organization_id: UUID, event_id: UUID, customer_id: UUID, last_four: str, at: datetime
) -> Alert | None:
    """The card holder's alert for a RevealCard; None when the event's last four are not four digits (the SMS
    carries nothing but them and the time)."""
    if len(last_four) != CARD_LAST_DIGITS or not last_four.isascii() or not last_four.isdigit():
        return None
    return Alert(
        organization_id=organization_id,
        customer_id=customer_id,
        notification_id=alert_notification_id(event_id, customer_id, AlertKind.CARD_REVEAL),
        template=NotificationTemplate.CARD_REVEAL_ALERT,
        params={"last_four": last_four, "time": at.strftime("%Y-%m-%d %H:%M UTC")},
    )


def alert_recipient(alert: Alert, contacts: Sequence[Contact], purposes: frozenset[Purpose]) -> Contact | None:
    """The first live contact of the subject collected for one of ``purposes`` that wants this alert: for a
    transaction alert, one whose threshold for the currency the amount reaches."""
    for contact in sorted(contacts, key=lambda c: c.contact_id):
        if contact.deleted_at is not None or contact.erased or not purposes & contact.purposes:
            continue
        if alert.threshold_check is None:
            return contact
        currency, amount_minor = alert.threshold_check
        for threshold in contact.alert_thresholds:
            if threshold.currency == currency and amount_minor >= threshold.amount_minor:
                return contact
    return None
