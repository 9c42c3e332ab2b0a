"""Use case of the alert consumers: send one alert (domain_alerts.py) to the recipient's contact through the vault's
own SendNotification path, at most once per event (the notification id is derived from the event id)."""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller
from services.contacts.domain import Contact
from services.contacts.domain_alerts import ALERT_SENDER_PRINCIPAL_ID, Alert, alert_recipient
from services.contacts.domain_notifications import TEMPLATE_PURPOSES, NotificationStatus
from services.contacts.service_messages import MessagesService
from services.kit.tokens import PRINCIPAL_KIND_SERVICE


class AlertOutcome(enum.Enum):
    SENT = "sent"
    # The alert's notification id was recorded before (a redelivered event): not sent again.
    ALREADY_SENT = "already_sent"
    # No contact collected for the purpose, or the amount is below the customer's threshold.
    NOT_WANTED = "not_wanted"
    # The SMS provider refused; nothing was recorded, so a redelivery tries again.
    FAILED = "failed"


class AlertReadTx(Protocol):
    async def contacts_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[Contact]: ...


class AlertStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AlertReadTx]: ...


def alert_sender(organization_id: UUID) -> Caller:
    """The vault itself, acting for one tenant: recorded as the actor of the NOTIFICATION access-log entries."""
    return Caller(organization_id, ALERT_SENDER_PRINCIPAL_ID, PRINCIPAL_KIND_SERVICE, None)


class AlertService:
    def __init__(self, store: AlertStore, messages: MessagesService) -> None:
        self._store = store
        self._messages = messages

    async def send(self, alert: Alert) -> AlertOutcome:
        async with self._store.transaction() as tx:
            contacts = await tx.contacts_of_subject(alert.organization_id, alert.customer_id)
        contact = alert_recipient(alert, contacts, TEMPLATE_PURPOSES[alert.template])
        if contact is None:
            return AlertOutcome.NOT_WANTED
        sent = await self._messages.notify_contact(
            alert_sender(alert.organization_id),
            alert.notification_id,
            contact.contact_id,
            alert.template,
            alert.params,
        )
        if sent.record.status == NotificationStatus.FAILED:
            return AlertOutcome.FAILED
        return AlertOutcome.ALREADY_SENT if sent.replayed else AlertOutcome.SENT
