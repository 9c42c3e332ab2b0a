"""Use cases that use a secret inside the vault: SendNotification (the number goes to the SMS sink, never back over
gRPC) and card secrets (generated here, so the plaintext is born in the vault)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller, access_entry
from services.contacts.contact_reader import CONTACT_TABLE, PHONE_FIELD
from services.contacts.crypto import BlindIndexer
from services.contacts.domain import Contact, ContactNotFound, PurposeNotAllowed, SubjectErased, phone_from_e164
from services.contacts.domain_access_log import AccessAction, AccessLogEntry
from services.contacts.domain_cards import (
    RANDOM_BYTES_NEEDED,
    CardSecret,
    CardSecretValue,
    generate_card,
    validate_provided_card,
)
from services.contacts.domain_notifications import (
    TEMPLATE_PURPOSES,
    NotificationStatus,
    NotificationTemplate,
    render,
    validate_params,
)
from services.contacts.envelope import DataKeyTx, Envelope, decrypt_field, encrypt_field
from services.contacts.sms import SmsSink, SmsSinkError
from services.contacts.store_secrets import NotificationRecord
from services.kit.errors import FieldViolation, IdempotencyKeyReused, NotFound, invalid
from services.kit.ids import parse_uuid

log = logging.getLogger(__name__)

CARD_TABLE = "card_secret"


class MessagesTx(DataKeyTx, Protocol):
    async def append_access(self, entry: AccessLogEntry) -> None: ...

    async def contact(
        self, organization_id: UUID, contact_id: UUID, *, for_update: bool = False
    ) -> Contact | None: ...

    async def contacts_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[Contact]: ...

    async def notification(self, organization_id: UUID, notification_id: UUID) -> NotificationRecord | None: ...

    async def insert_notification(
        self, organization_id: UUID, record: NotificationRecord, customer_id: UUID | None, now: datetime
    ) -> bool: ...

    async def insert_card(self, card: CardSecret) -> CardSecret | None: ...

    async def card(self, organization_id: UUID, card_secret_id: UUID) -> CardSecret | None: ...

    async def tombstone_card(self, organization_id: UUID, card_secret_id: UUID, now: datetime) -> datetime: ...


class MessagesStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[MessagesTx]: ...


@dataclass(frozen=True, slots=True)
class SentNotification:
    record: NotificationRecord
    masked_phone_number: str
    # True when the notification id was used before: nothing was sent this time.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CardSource:
    """StoreCardSecret's oneof: ``generate`` (bin, validity) or ``provided`` (the card)."""

    generate: tuple[str, int] | None
    provided: CardSecretValue | None


class SinkRefused(Exception):
    """Internal: the sink refused; raised through the transaction so nothing is recorded."""

    def __init__(self, contact_id: UUID, masked_phone_number: str, error_type: str) -> None:
        super().__init__(error_type)
        self.contact_id = contact_id
        self.masked_phone_number = masked_phone_number
        self.error_type = error_type


class CardSecretNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("card secret not found")


class MessagesService:
    def __init__(
        self,
        store: MessagesStore,
        envelope: Envelope,
        indexer: BlindIndexer,
        sink: SmsSink,
        clock: Callable[[], datetime],
        card_test_bin: str,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._store = store
        self._envelope = envelope
        self._indexer = indexer
        self._sink = sink
        self._clock = clock
        self._card_test_bin = card_test_bin
        self._random_bytes = random_bytes

    async def send_notification(
        self,
        caller: Caller,
        notification_id_text: str,
        contact_id_text: str,
        customer_id_text: str,
        template_value: int,
        params: Mapping[str, str],
    ) -> SentNotification:
        violations: list[FieldViolation] = []
        notification_id = parse_uuid(notification_id_text, "notification_id", violations)
        contact_id = parse_uuid(contact_id_text, "contact_id", violations, required=False)
        customer_id = parse_uuid(customer_id_text, "customer_id", violations, required=False)
        if contact_id is None and customer_id is None and not violations:
            violations.append(FieldViolation("recipient", "give contact_id or customer_id"))
        template: NotificationTemplate | None = None
        try:
            template = NotificationTemplate(template_value)
        except ValueError:
            violations.append(FieldViolation("notification_template", "is required and must be a known template"))
        if template is not None:
            validate_params(template, params, violations)
        if violations:
            raise invalid(violations)
        assert notification_id is not None
        assert template is not None
        return await self._send_or_report(caller, notification_id, contact_id, customer_id, template, params)

    async def notify_contact(
        self,
        caller: Caller,
        notification_id: UUID,
        contact_id: UUID,
        template: NotificationTemplate,
        params: Mapping[str, str],
    ) -> SentNotification:
        """SendNotification for the vault's own senders (the alert consumers): the recipient is already chosen and
        the parameters built by the vault, but they pass the same checks, the same idempotency by
        ``notification_id`` and the same access log as a call over gRPC."""
        violations: list[FieldViolation] = []
        validate_params(template, params, violations)
        if violations:
            raise invalid(violations)
        return await self._send_or_report(caller, notification_id, contact_id, None, template, params)

    async def _send_or_report(
        self,
        caller: Caller,
        notification_id: UUID,
        contact_id: UUID | None,
        customer_id: UUID | None,
        template: NotificationTemplate,
        params: Mapping[str, str],
    ) -> SentNotification:
        now = self._clock()
        try:
            return await self._send(caller, notification_id, contact_id, customer_id, template, params, now)
        except SinkRefused as refused:
            # Nothing was recorded (the transaction rolled back): a retry with the same id sends again.
            log.warning("SMS sink refused a notification", extra={"fields": {"error": refused.error_type}})
            failed = NotificationRecord(
                notification_id, refused.contact_id, int(template), NotificationStatus.FAILED, None
            )
            return SentNotification(failed, refused.masked_phone_number)

    async def _send(
        self,
        caller: Caller,
        notification_id: UUID,
        contact_id: UUID | None,
        customer_id: UUID | None,
        template: NotificationTemplate,
        params: Mapping[str, str],
        now: datetime,
    ) -> SentNotification:
        async with self._store.transaction() as tx:
            existing = await tx.notification(caller.organization_id, notification_id)
            if existing is not None:
                return await self._replayed(tx, caller, existing, template)
            contact = await self._recipient(tx, caller, contact_id, customer_id, template)
            if contact is None:
                record = NotificationRecord(notification_id, None, int(template), NotificationStatus.SUPPRESSED, None)
                await tx.insert_notification(caller.organization_id, record, customer_id, now)
                return SentNotification(record, "")
            data_key = await self._envelope.existing_key(tx, caller.organization_id, contact.customer_id)
            assert contact.phone_ciphertext is not None
            e164 = decrypt_field(
                data_key,
                caller.organization_id,
                CONTACT_TABLE,
                contact.contact_id,
                PHONE_FIELD,
                contact.phone_ciphertext,
            )
            record = NotificationRecord(
                notification_id, contact.contact_id, int(template), NotificationStatus.SENT, now
            )
            if not await tx.insert_notification(caller.organization_id, record, contact.customer_id, now):
                raise IdempotencyKeyReused("notification_id", "request (sent concurrently)")
            await tx.append_access(
                access_entry(
                    caller, AccessAction.NOTIFICATION, contact.customer_id, now, contact_id=contact.contact_id
                )
            )
            # Inside the transaction: if the sink refuses, nothing is recorded and the caller retries with the same id.
            masked = phone_from_e164(e164).masked
            try:
                await self._sink.send(notification_id, e164, render(template, params))
            except (OSError, SmsSinkError) as err:
                raise SinkRefused(contact.contact_id, masked, type(err).__name__) from None
            return SentNotification(record, masked)

    async def _replayed(
        self, tx: MessagesTx, caller: Caller, existing: NotificationRecord, template: NotificationTemplate
    ) -> SentNotification:
        if existing.notification_template != int(template):
            raise IdempotencyKeyReused("notification_id", "notification_template")
        masked = ""
        if existing.contact_id is not None:
            contact = await tx.contact(caller.organization_id, existing.contact_id)
            if contact is not None and contact.phone_ciphertext is not None:
                data_key = await self._envelope.existing_key(tx, caller.organization_id, contact.customer_id)
                e164 = decrypt_field(
                    data_key,
                    caller.organization_id,
                    CONTACT_TABLE,
                    contact.contact_id,
                    PHONE_FIELD,
                    contact.phone_ciphertext,
                )
                masked = phone_from_e164(e164).masked
        return SentNotification(existing, masked, replayed=True)

    async def _recipient(
        self,
        tx: MessagesTx,
        caller: Caller,
        contact_id: UUID | None,
        customer_id: UUID | None,
        template: NotificationTemplate,
    ) -> Contact | None:
        needed = TEMPLATE_PURPOSES[template]
        if contact_id is not None:
            contact = await tx.contact(caller.organization_id, contact_id)
            if contact is None or contact.deleted_at is not None:
                if contact is not None and contact.erased:
                    raise SubjectErased()
                raise ContactNotFound()
            if not needed & contact.purposes:
                raise PurposeNotAllowed("the contact was not collected for this template's purpose")
            return contact
        assert customer_id is not None
        for contact in await tx.contacts_of_subject(caller.organization_id, customer_id):
            if needed & contact.purposes:
                return contact
        return None

    # --- card secrets ----------------------------------------------------------------------------------------------

    async def store_card_secret(
        self, caller: Caller, card_secret_id_text: str, customer_id_text: str, source: CardSource
    ) -> CardSecret:
        violations: list[FieldViolation] = []
        card_secret_id = parse_uuid(card_secret_id_text, "card_secret_id", violations)
        customer_id = parse_uuid(customer_id_text, "customer_id", violations)
        now = self._clock()
        value: CardSecretValue | None = None
        if source.provided is not None:
            provided = source.provided
            value = validate_provided_card(
                provided.card_number, provided.cvv, provided.expiry_month, provided.expiry_year, violations
            )
        elif source.generate is not None:
            bin_prefix, validity_months = source.generate
            value = generate_card(
                bin_prefix or self._card_test_bin,
                validity_months,
                now,
                self._random_bytes(RANDOM_BYTES_NEEDED),
                violations,
            )
        else:
            violations.append(FieldViolation("source", "give generate or provided"))
        if violations:
            raise invalid(violations)
        assert card_secret_id is not None
        assert customer_id is not None
        assert value is not None
        # Replays of a generated card cannot repeat its random number: the digest covers who and how, not the value.
        kind = "generate" if source.generate is not None else "provided:" + value.card_number + value.cvv
        digest = self._indexer.request_digest(f"card|{customer_id}|{kind}".encode())
        async with self._store.transaction() as tx:
            existing = await tx.card(caller.organization_id, card_secret_id)
            if existing is None:
                data_key = await self._envelope.key_for_write(tx, caller.organization_id, customer_id, now)
                card = CardSecret(
                    organization_id=caller.organization_id,
                    card_secret_id=card_secret_id,
                    customer_id=customer_id,
                    number_ciphertext=encrypt_field(
                        data_key, caller.organization_id, CARD_TABLE, card_secret_id, "number", value.card_number
                    ),
                    cvv_ciphertext=encrypt_field(
                        data_key, caller.organization_id, CARD_TABLE, card_secret_id, "cvv", value.cvv
                    ),
                    last_four=value.last_four,
                    expiry_month=value.expiry_month,
                    expiry_year=value.expiry_year,
                    request_digest=digest,
                    created_at=now,
                    deleted_at=None,
                )
                existing = await tx.insert_card(card) or await tx.card(caller.organization_id, card_secret_id)
                assert existing is not None
                if existing.card_secret_id == card_secret_id and existing.request_digest == digest:
                    return existing
            if existing.customer_id != customer_id:
                raise IdempotencyKeyReused("card_secret_id", "customer_id")
            if existing.request_digest != digest:
                raise IdempotencyKeyReused("card_secret_id", "source")
            return existing

    async def reveal_card_secret(
        self, caller: Caller, card_secret_id_text: str, on_behalf_of: str
    ) -> CardSecretValue:
        violations: list[FieldViolation] = []
        card_secret_id = parse_uuid(card_secret_id_text, "card_secret_id", violations)
        if not on_behalf_of.strip():
            violations.append(FieldViolation("on_behalf_of_principal_id", "is required"))
        if violations:
            raise invalid(violations)
        assert card_secret_id is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            card = await tx.card(caller.organization_id, card_secret_id)
            if card is None or card.number_ciphertext is None or card.cvv_ciphertext is None:
                raise CardSecretNotFound()
            data_key = await self._envelope.existing_key(tx, caller.organization_id, card.customer_id)
            number = decrypt_field(
                data_key, caller.organization_id, CARD_TABLE, card_secret_id, "number", card.number_ciphertext
            )
            cvv = decrypt_field(
                data_key, caller.organization_id, CARD_TABLE, card_secret_id, "cvv", card.cvv_ciphertext
            )
            await tx.append_access(
                access_entry(
                    caller,
                    AccessAction.CARD_SECRET_REVEAL,
                    card.customer_id,
                    now,
                    card_secret_id=card_secret_id,
                    on_behalf_of=on_behalf_of.strip(),
                )
            )
            return CardSecretValue(number, cvv, card.expiry_month, card.expiry_year)

    async def delete_card_secret(self, caller: Caller, card_secret_id_text: str, request_id_text: str) -> datetime:
        violations: list[FieldViolation] = []
        card_secret_id = parse_uuid(card_secret_id_text, "card_secret_id", violations)
        parse_uuid(request_id_text, "request_id", violations)
        if violations:
            raise invalid(violations)
        assert card_secret_id is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            card = await tx.card(caller.organization_id, card_secret_id)
            if card is None:
                raise CardSecretNotFound()
            # Deleting twice returns the first deletion's time: the request id adds nothing a tombstone lacks.
            return await tx.tombstone_card(caller.organization_id, card_secret_id, now)
