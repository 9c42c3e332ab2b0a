"""Which alerts a fact causes, who receives them, and the notification ids that make redelivery harmless."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from services.contacts.domain import AlertThreshold, Contact, Purpose
from services.contacts.domain_alerts import (
    AlertKind,
    PostedTransfer,
    alert_notification_id,
    alert_recipient,
    card_reveal_alert,
    display_amount,
    lockout_alert,
    transfer_alerts,
)
from services.contacts.domain_notifications import TEMPLATE_PURPOSES, NotificationTemplate

ORG = uuid.UUID("00000000-0000-7000-8000-000000000001")
EVENT = uuid.UUID("00000000-0000-7000-8000-0000000000e1")
PAYER = uuid.UUID("00000000-0000-7000-8000-0000000000a1")
PAYEE = uuid.UUID("00000000-0000-7000-8000-0000000000b1")
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def posted(
    debit: uuid.UUID | None = PAYER, credit: uuid.UUID | None = PAYEE, amount_minor: int = 1250
) -> PostedTransfer:
    return PostedTransfer(ORG, EVENT, "0192f0aa-1111-7000-8000-000000000001", debit, credit, "EUR", amount_minor)


def contact(
    *thresholds: AlertThreshold, purposes: frozenset[Purpose] = frozenset({Purpose.TRANSACTION_ALERTS})
) -> Contact:
    return Contact(
        organization_id=ORG,
        contact_id=uuid.uuid4(),
        customer_id=PAYER,
        phone_ciphertext=b"x",
        region_code="CN",
        purposes=purposes,
        consent_reference="c",
        retention_s=60,
        retain_until=NOW,
        alert_thresholds=thresholds,
        discoverable=False,
        default_account_id=None,
        discoverable_account_ids=(),
        request_digest=b"",
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
        erased=False,
    )


def test_a_transfer_between_two_customers_alerts_each_side_with_its_own_id() -> None:
    sent, received = transfer_alerts(posted())
    assert (sent.customer_id, sent.params["direction"]) == (PAYER, "sent")
    assert (received.customer_id, received.params["direction"]) == (PAYEE, "received")
    assert sent.params == {"direction": "sent", "amount": "12.50", "currency": "EUR", "reference": "0192f0aa"}
    assert sent.notification_id != received.notification_id
    assert sent.notification_id == alert_notification_id(EVENT, PAYER, AlertKind.SENT)  # stable across deliveries
    assert sent.template is NotificationTemplate.TRANSACTION_ALERT


def test_own_account_moves_alert_once_and_operating_accounts_not_at_all() -> None:
    assert [a.params["direction"] for a in transfer_alerts(posted(PAYER, PAYER))] == ["sent"]
    assert [a.customer_id for a in transfer_alerts(posted(None, PAYEE))] == [PAYEE]
    assert transfer_alerts(posted(None, None)) == []


def test_the_threshold_is_inclusive_and_per_currency() -> None:
    (alert, _) = transfer_alerts(posted(amount_minor=1000))
    purposes = TEMPLATE_PURPOSES[alert.template]
    at = contact(AlertThreshold("EUR", 1000))
    assert alert_recipient(alert, [at], purposes) is at
    assert alert_recipient(alert, [contact(AlertThreshold("EUR", 1001))], purposes) is None
    assert alert_recipient(alert, [contact(AlertThreshold("USD", 1))], purposes) is None
    assert alert_recipient(alert, [contact()], purposes) is None


def test_contacts_without_the_purpose_or_deleted_are_skipped() -> None:
    (alert, _) = transfer_alerts(posted())
    purposes = TEMPLATE_PURPOSES[alert.template]
    support = contact(AlertThreshold("EUR", 0), purposes=frozenset({Purpose.SUPPORT}))
    deleted = replace(contact(AlertThreshold("EUR", 0)), deleted_at=NOW)
    assert alert_recipient(alert, [support, deleted], purposes) is None


def test_security_alerts_need_no_threshold() -> None:
    alert = lockout_alert(ORG, EVENT, PAYER, NOW)
    plain = contact(purposes=frozenset({Purpose.LOGIN_OTP}))
    assert alert_recipient(alert, [plain], TEMPLATE_PURPOSES[alert.template]) is plain
    assert alert.params == {"locked_until": "2026-11-23 09:30 UTC"}


def test_amounts_of_unknown_assets_are_shown_in_their_units() -> None:
    assert display_amount("JPY", 1250) == "1250"
    assert display_amount("PTS", 42) == "42"


def test_card_reveal_alerts_name_the_card_by_its_last_four_only() -> None:
    alert = card_reveal_alert(ORG, EVENT, PAYER, "4242", NOW)
    assert alert is not None
    assert alert.template is NotificationTemplate.CARD_REVEAL_ALERT
    assert alert.params == {"last_four": "4242", "time": "2026-11-23 09:30 UTC"}
    assert alert.notification_id == alert_notification_id(EVENT, PAYER, AlertKind.CARD_REVEAL)
    assert alert.notification_id != alert_notification_id(EVENT, PAYER, AlertKind.NEW_DEVICE)
    plain = contact()
    assert alert_recipient(alert, [plain], TEMPLATE_PURPOSES[alert.template]) is plain
    for bad in ("", "424", "42424", "42a2", "٤٢٤٢"):
        assert card_reveal_alert(ORG, EVENT, PAYER, bad, NOW) is None
