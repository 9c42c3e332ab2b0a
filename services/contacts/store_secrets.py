"""SQL of card secrets, notifications, erasure receipts and the receipt-signing key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.contacts.domain_cards import CardSecret


def _card(row: asyncpg.Record) -> CardSecret:
    return CardSecret(
        organization_id=row["organization_id"],
        card_secret_id=row["card_secret_id"],
        customer_id=row["customer_id"],
        number_ciphertext=row["number_ciphertext"],
        cvv_ciphertext=row["cvv_ciphertext"],
        last_four=row["last_four"],
        expiry_month=row["expiry_month"],
        expiry_year=row["expiry_year"],
        request_digest=row["request_digest"],
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    notification_id: UUID
    contact_id: UUID | None
    notification_template: int
    status: int
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    erasure_receipt_id: UUID
    customer_id: UUID
    contacts_erased: int
    card_secrets_erased: int
    erased_at: datetime
    statement: bytes
    signature: bytes
    signing_key_id: str


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    signing_key_id: str
    kek_version: int
    wrapped_private_key: bytes
    public_key: bytes


class SecretStatements:
    connection: asyncpg.Connection

    # --- card secrets ---

    async def insert_card(self, card: CardSecret) -> CardSecret | None:
        row = await self.connection.fetchrow(
            """INSERT INTO card_secret (organization_id, card_secret_id, customer_id, number_ciphertext,
                   cvv_ciphertext, last_four, expiry_month, expiry_year, request_digest, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING *""",
            card.organization_id,
            card.card_secret_id,
            card.customer_id,
            card.number_ciphertext,
            card.cvv_ciphertext,
            card.last_four,
            card.expiry_month,
            card.expiry_year,
            card.request_digest,
            card.created_at,
        )
        return None if row is None else _card(row)

    async def card(self, organization_id: UUID, card_secret_id: UUID) -> CardSecret | None:
        row = await self.connection.fetchrow(
            "SELECT * FROM card_secret WHERE organization_id = $1 AND card_secret_id = $2",
            organization_id,
            card_secret_id,
        )
        return None if row is None else _card(row)

    async def cards_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[CardSecret]:
        rows = await self.connection.fetch(
            """SELECT * FROM card_secret WHERE organization_id = $1 AND customer_id = $2 AND deleted_at IS NULL
               ORDER BY card_secret_id""",
            organization_id,
            customer_id,
        )
        return [_card(row) for row in rows]

    async def tombstone_card(self, organization_id: UUID, card_secret_id: UUID, now: datetime) -> datetime:
        deleted_at = await self.connection.fetchval(
            """UPDATE card_secret SET number_ciphertext = NULL, cvv_ciphertext = NULL,
                   deleted_at = COALESCE(deleted_at, $3)
               WHERE organization_id = $1 AND card_secret_id = $2 RETURNING deleted_at""",
            organization_id,
            card_secret_id,
            now,
        )
        assert isinstance(deleted_at, datetime)
        return deleted_at

    # --- notifications ---

    async def notification(self, organization_id: UUID, notification_id: UUID) -> NotificationRecord | None:
        row = await self.connection.fetchrow(
            """SELECT notification_id, contact_id, notification_template, status, sent_at FROM notification
               WHERE organization_id = $1 AND notification_id = $2""",
            organization_id,
            notification_id,
        )
        return None if row is None else NotificationRecord(*row.values())

    async def insert_notification(
        self, organization_id: UUID, record: NotificationRecord, customer_id: UUID | None, now: datetime
    ) -> bool:
        inserted = await self.connection.fetchval(
            """INSERT INTO notification (organization_id, notification_id, contact_id, customer_id,
                   notification_template, status, sent_at, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true""",
            organization_id,
            record.notification_id,
            record.contact_id,
            customer_id,
            record.notification_template,
            record.status,
            record.sent_at,
            now,
        )
        return bool(inserted)

    # --- erasure receipts and the signing key ---

    async def receipt(self, organization_id: UUID, request_id: UUID) -> ReceiptRecord | None:
        row = await self.connection.fetchrow(
            """SELECT erasure_receipt_id, customer_id, contacts_erased, card_secrets_erased, erased_at, statement,
                   signature, signing_key_id FROM erasure_receipt WHERE organization_id = $1 AND request_id = $2""",
            organization_id,
            request_id,
        )
        return None if row is None else ReceiptRecord(*row.values())

    async def insert_receipt(self, organization_id: UUID, request_id: UUID, receipt: ReceiptRecord) -> None:
        await self.connection.execute(
            """INSERT INTO erasure_receipt (organization_id, request_id, erasure_receipt_id, customer_id,
                   contacts_erased, card_secrets_erased, erased_at, statement, signature, signing_key_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            organization_id,
            request_id,
            receipt.erasure_receipt_id,
            receipt.customer_id,
            receipt.contacts_erased,
            receipt.card_secrets_erased,
            receipt.erased_at,
            receipt.statement,
            receipt.signature,
            receipt.signing_key_id,
        )

    async def signing_key(self) -> SigningKeyRecord | None:
        row = await self.connection.fetchrow(
            """SELECT signing_key_id, kek_version, wrapped_private_key, public_key FROM signing_key
               ORDER BY created_at DESC LIMIT 1"""
        )
        return None if row is None else SigningKeyRecord(*row.values())

    async def insert_signing_key(self, record: SigningKeyRecord, now: datetime) -> None:
        await self.connection.execute(
            """INSERT INTO signing_key (signing_key_id, kek_version, wrapped_private_key, public_key, created_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            record.signing_key_id,
            record.kek_version,
            record.wrapped_private_key,
            record.public_key,
            now,
        )
