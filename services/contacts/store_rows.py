"""Row ⇄ domain mapping shared by the store modules."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from services.contacts.domain import AlertThreshold, Contact, Purpose


def contact_from_row(row: asyncpg.Record) -> Contact:
    thresholds = json.loads(row["alert_thresholds"])
    return Contact(
        organization_id=row["organization_id"],
        contact_id=row["contact_id"],
        customer_id=row["customer_id"],
        phone_ciphertext=row["phone_ciphertext"],
        region_code=row["region_code"],
        purposes=frozenset(Purpose(value) for value in row["purposes"]),
        consent_reference=row["consent_reference"],
        retention_s=row["retention_s"],
        retain_until=row["retain_until"],
        alert_thresholds=tuple(AlertThreshold(item["currency"], item["amount_minor"]) for item in thresholds),
        discoverable=row["discoverable"],
        default_account_id=row["default_account_id"],
        discoverable_account_ids=tuple(row["discoverable_account_ids"]),
        request_digest=row["request_digest"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
        erased=row["erased"],
    )


def thresholds_json(thresholds: Sequence[AlertThreshold]) -> str:
    return json.dumps([{"currency": t.currency, "amount_minor": t.amount_minor} for t in thresholds])
