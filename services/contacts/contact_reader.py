"""Reading contacts inside the vault, shared by the contact and directory use cases: visibility (tenant, customer,
erased, deleted), masking by decrypting with the subject's data key, and the briefly cached key versions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller
from services.contacts.domain import Contact, ContactNotFound, PhoneNumber, SubjectErased, phone_from_e164
from services.contacts.envelope import DataKeyTx, Envelope, decrypt_field

CONTACT_TABLE = "contact"
PHONE_FIELD = "phone"
KEY_VERSIONS_CACHE_S = 1.0


class ContactReadTx(DataKeyTx, Protocol):
    async def contact(
        self, organization_id: UUID, contact_id: UUID, *, for_update: bool = False
    ) -> Contact | None: ...


class KeyVersionSource(Protocol):
    async def key_versions(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class MaskedContact:
    contact: Contact
    masked_phone_number: str


class ContactReader:
    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self._versions: tuple[float, tuple[int, int]] | None = None

    async def key_versions(self, source: KeyVersionSource) -> tuple[int, int]:
        """(KEK, blind-index) current versions, cached briefly: they change only on a rotation (lookups tolerate
        the lag, see ``BlindIndexer.lookup_indexes``)."""
        now = time.monotonic()
        if self._versions is None or now - self._versions[0] > KEY_VERSIONS_CACHE_S:
            self._versions = (now, await source.key_versions())
        return self._versions[1]

    async def visible_contact(
        self, tx: ContactReadTx, caller: Caller, contact_id: UUID, *, for_update: bool = False
    ) -> Contact:
        """The caller's tenant's live contact; another tenant's or customer's is NOT_FOUND, an erased one
        SUBJECT_ERASED."""
        contact = await tx.contact(caller.organization_id, contact_id, for_update=for_update)
        if contact is None:
            raise ContactNotFound()
        caller.check_subject_visible(contact.customer_id)
        if contact.erased:
            raise SubjectErased()
        if contact.deleted_at is not None:
            raise ContactNotFound()
        return contact

    async def mask_all(self, tx: ContactReadTx, contacts: Sequence[Contact]) -> list[MaskedContact]:
        keys: dict[UUID, bytes] = {}
        masked: list[MaskedContact] = []
        for contact in contacts:
            if contact.customer_id not in keys:
                keys[contact.customer_id] = await self.envelope.existing_key(
                    tx, contact.organization_id, contact.customer_id
                )
            masked.append(MaskedContact(contact, self.decrypt_phone(keys[contact.customer_id], contact).masked))
        return masked

    @staticmethod
    def decrypt_phone(data_key: bytes, contact: Contact) -> PhoneNumber:
        assert contact.phone_ciphertext is not None
        e164 = decrypt_field(
            data_key,
            contact.organization_id,
            CONTACT_TABLE,
            contact.contact_id,
            PHONE_FIELD,
            contact.phone_ciphertext,
        )
        return phone_from_e164(e164)
