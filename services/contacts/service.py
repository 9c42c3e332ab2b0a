"""Use cases of the vault's contacts: store, update, delete, read masked, reveal, discoverability, resolve.

One async method per RPC. The number is decrypted only inside these methods, to mask it or to reveal it; it never
goes to a log, a span attribute or an error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller, access_entry
from services.contacts.contact_reader import (
    CONTACT_TABLE,
    PHONE_FIELD,
    ContactReader,
    ContactReadTx,
    MaskedContact,
)
from services.contacts.crypto import BlindIndexer
from services.contacts.domain import (
    Contact,
    ContactDraft,
    ContactNotFound,
    Purpose,
    PurposeNotAllowed,
    RevealPurpose,
    StoreContactInput,
    SubjectErased,
    UpdateContactInput,
    apply_update,
    check_reveal_purpose,
    first_difference,
    retain_until,
    store_request_canonical,
    update_request_canonical,
    validate_store_contact,
    validate_update,
)
from services.contacts.domain_access_log import AccessAction, AccessLogEntry
from services.contacts.envelope import encrypt_field
from services.contacts.limits import (
    JUSTIFICATION_CHARS_MAX,
    JUSTIFICATION_CHARS_MIN,
)
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size

Clock = Callable[[], datetime]


class ContactsTx(ContactReadTx, Protocol):
    async def insert_contact(
        self,
        organization_id: UUID,
        draft: ContactDraft,
        phone_ciphertext: bytes,
        blind_index: bytes,
        blind_index_version: int,
        request_digest: bytes,
        retain_until: datetime,
        now: datetime,
    ) -> Contact | None: ...

    async def contact(
        self, organization_id: UUID, contact_id: UUID, *, for_update: bool = False
    ) -> Contact | None: ...

    async def list_contacts(
        self,
        organization_id: UUID,
        customer_id: UUID | None,
        purpose: Purpose | None,
        after_contact_id: UUID | None,
        limit: int,
    ) -> list[Contact]: ...

    async def update_contact(
        self, contact: Contact, phone: tuple[bytes, bytes, int] | None, now: datetime
    ) -> Contact: ...

    async def tombstone_contact(
        self, organization_id: UUID, contact_id: UUID, now: datetime, *, erased: bool
    ) -> None: ...

    async def claim_request(
        self, organization_id: UUID, request_id: UUID, method: str, digest: bytes, resource_id: UUID, now: datetime
    ) -> tuple[str, bytes, UUID] | None: ...

    async def append_access(self, entry: AccessLogEntry) -> None: ...

    async def expired_contacts(self, now: datetime, limit: int) -> list[Contact]: ...


class ContactsStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ContactsTx]: ...

    async def key_versions(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class ContactPage:
    contacts: list[MaskedContact]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Revealed:
    contact_id: UUID
    e164: str
    access_log_entry_id: UUID

    def __repr__(self) -> str:
        return f"Revealed(contact_id={self.contact_id}, access_log_entry_id={self.access_log_entry_id})"


class ContactsService:
    def __init__(self, store: ContactsStore, reader: ContactReader, indexer: BlindIndexer, clock: Clock) -> None:
        self._store = store
        self._reader = reader
        self._envelope = reader.envelope
        self._indexer = indexer
        self._clock = clock

    async def store_contact(self, caller: Caller, request: StoreContactInput) -> MaskedContact:
        violations: list[FieldViolation] = []
        requested = parse_uuid(request.customer_id, "customer_id", violations, required=False)
        if violations:
            raise invalid(violations)
        customer_id = caller.subject_for_write(requested)
        draft = validate_store_contact(replace(request, customer_id=str(customer_id)))
        digest = self._indexer.request_digest(store_request_canonical(draft))
        now = self._clock()
        async with self._store.transaction() as tx:
            # Insert first and look only on a conflict: a replay is rare, a round trip per store is not. A replay
            # that fails raises, so the data key it may have created for the named subject rolls back with it.
            _, blind_version = await self._reader.key_versions(tx)
            data_key = await self._envelope.key_for_write(tx, caller.organization_id, customer_id, now)
            ciphertext = encrypt_field(
                data_key, caller.organization_id, CONTACT_TABLE, draft.contact_id, PHONE_FIELD, draft.phone.e164
            )
            blind_index = self._indexer.index(blind_version, draft.phone.e164)
            until = retain_until(now, draft.retention_s)
            stored = await tx.insert_contact(
                caller.organization_id, draft, ciphertext, blind_index, blind_version, digest, until, now
            )
            if stored is None:
                raced = await tx.contact(caller.organization_id, draft.contact_id)
                assert raced is not None
                return await self._replayed_store(tx, caller, raced, draft, digest)
            return MaskedContact(stored, draft.phone.masked)

    async def _replayed_store(
        self, tx: ContactsTx, caller: Caller, existing: Contact, draft: ContactDraft, digest: bytes
    ) -> MaskedContact:
        if existing.customer_id != draft.customer_id or (
            caller.is_customer and existing.customer_id != caller.customer_id
        ):
            raise IdempotencyKeyReused("contact_id", "customer_id")
        if existing.erased:
            raise SubjectErased()
        if existing.deleted_at is not None:
            raise IdempotencyKeyReused("contact_id", "state (the contact was deleted)")
        data_key = await self._envelope.existing_key(tx, existing.organization_id, existing.customer_id)
        phone = self._reader.decrypt_phone(data_key, existing)
        if existing.request_digest != digest:
            difference = first_difference(existing, draft, same_number=phone.e164 == draft.phone.e164)
            raise IdempotencyKeyReused("contact_id", difference or "content")
        return MaskedContact(existing, phone.masked)

    async def get_contact(self, caller: Caller, contact_id_text: str) -> MaskedContact:
        contact_id = _required_uuid(contact_id_text, "contact_id")
        async with self._store.transaction() as tx:
            contact = await self._reader.visible_contact(tx, caller, contact_id)
            return (await self._reader.mask_all(tx, [contact]))[0]

    async def list_contacts(
        self, caller: Caller, requested_page_size: int, page_token: str, customer_id_text: str, purpose_value: int
    ) -> ContactPage:
        violations: list[FieldViolation] = []
        customer_id = parse_uuid(customer_id_text, "customer_id", violations, required=False)
        purpose: Purpose | None = None
        if purpose_value:
            try:
                purpose = Purpose(purpose_value)
            except ValueError:
                violations.append(FieldViolation("purpose", "is not a purpose on the fixed list"))
        if violations:
            raise invalid(violations)
        if caller.customer_id is not None:
            if customer_id is not None and customer_id != caller.customer_id:
                return ContactPage([], "")
            customer_id = caller.customer_id
        size = page_size(requested_page_size)
        filters = {"customer_id": str(customer_id or ""), "purpose": int(purpose or 0)}
        cursor = decode_page_token(page_token, filters)
        after = UUID(str(cursor["after"])) if cursor is not None else None
        async with self._store.transaction() as tx:
            contacts = await tx.list_contacts(caller.organization_id, customer_id, purpose, after, size + 1)
            shown, next_token = next_page(contacts, size, lambda last: {"after": str(last.contact_id)}, filters)
            page = await self._reader.mask_all(tx, shown)
        return ContactPage(page, next_token)

    async def update_contact(self, caller: Caller, request: UpdateContactInput) -> MaskedContact:
        update = validate_update(request)
        digest = self._indexer.request_digest(update_request_canonical(update, request))
        now = self._clock()
        async with self._store.transaction() as tx:
            contact = await self._reader.visible_contact(tx, caller, update.contact_id, for_update=True)
            claimed = await tx.claim_request(
                caller.organization_id, update.request_id, "UpdateContact", digest, update.contact_id, now
            )
            if claimed is not None:
                if claimed != ("UpdateContact", digest, update.contact_id):
                    raise IdempotencyKeyReused("request_id", "request")
                return (await self._reader.mask_all(tx, [contact]))[0]
            updated = apply_update(contact, update, now)
            new_phone: tuple[bytes, bytes, int] | None = None
            if update.phone is not None:
                _, blind_version = await self._reader.key_versions(tx)
                data_key = await self._envelope.existing_key(tx, caller.organization_id, contact.customer_id)
                ciphertext = encrypt_field(
                    data_key, caller.organization_id, CONTACT_TABLE, update.contact_id, PHONE_FIELD, update.phone.e164
                )
                new_phone = (ciphertext, self._indexer.index(blind_version, update.phone.e164), blind_version)
            stored = await tx.update_contact(updated, new_phone, now)
            return (await self._reader.mask_all(tx, [stored]))[0]

    async def delete_contact(
        self, caller: Caller, contact_id_text: str, request_id_text: str
    ) -> tuple[UUID, datetime]:
        violations: list[FieldViolation] = []
        contact_id = parse_uuid(contact_id_text, "contact_id", violations)
        request_id = parse_uuid(request_id_text, "request_id", violations)
        if violations:
            raise invalid(violations)
        assert contact_id is not None
        assert request_id is not None
        now = self._clock()
        digest = hashlib.sha256(f"DeleteContact|{contact_id}".encode()).digest()
        async with self._store.transaction() as tx:
            contact = await tx.contact(caller.organization_id, contact_id, for_update=True)
            if contact is None:
                raise ContactNotFound()
            caller.check_subject_visible(contact.customer_id)
            claimed = await tx.claim_request(
                caller.organization_id, request_id, "DeleteContact", digest, contact_id, now
            )
            if claimed is not None and claimed != ("DeleteContact", digest, contact_id):
                raise IdempotencyKeyReused("request_id", "request")
            if contact.deleted_at is not None:
                if claimed is None:
                    raise ContactNotFound()
                return contact_id, contact.deleted_at
            await tx.tombstone_contact(caller.organization_id, contact_id, now, erased=False)
            return contact_id, now

    async def reveal_contact(
        self, caller: Caller, contact_id_text: str, reveal_purpose_value: int, justification: str
    ) -> Revealed:
        violations: list[FieldViolation] = []
        contact_id = parse_uuid(contact_id_text, "contact_id", violations)
        reveal_purpose: RevealPurpose | None = None
        try:
            reveal_purpose = RevealPurpose(reveal_purpose_value)
        except ValueError:
            violations.append(FieldViolation("reveal_purpose", "is required and must be on the fixed list"))
        text = justification.strip()
        if not JUSTIFICATION_CHARS_MIN <= len(text) <= JUSTIFICATION_CHARS_MAX:
            violations.append(
                FieldViolation(
                    "justification", f"must be {JUSTIFICATION_CHARS_MIN}-{JUSTIFICATION_CHARS_MAX} characters"
                )
            )
        if violations:
            raise invalid(violations)
        assert contact_id is not None
        assert reveal_purpose is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            contact = await self._reader.visible_contact(tx, caller, contact_id)
            if caller.is_customer and reveal_purpose is not RevealPurpose.SUBJECT_REQUEST:
                raise PurposeNotAllowed("customers reveal their own numbers with REVEAL_PURPOSE_SUBJECT_REQUEST")
            check_reveal_purpose(reveal_purpose, contact.purposes)
            data_key = await self._envelope.existing_key(tx, caller.organization_id, contact.customer_id)
            phone = self._reader.decrypt_phone(data_key, contact)
            entry = access_entry(
                caller,
                AccessAction.REVEAL,
                contact.customer_id,
                now,
                contact_id=contact_id,
                reveal_purpose=int(reveal_purpose),
                justification=text,
            )
            await tx.append_access(entry)
            return Revealed(contact_id, phone.e164, entry.access_log_entry_id)

    async def purge_expired(self, limit: int) -> int:
        """Tombstones (ciphertext deleted) at most ``limit`` contacts whose own retention (from their purpose) has
        passed; the retention job (services/contacts/retention.py) calls it in bounded rounds."""
        now = self._clock()
        async with self._store.transaction() as tx:
            expired = await tx.expired_contacts(now, limit)
            for contact in expired:
                await tx.tombstone_contact(contact.organization_id, contact.contact_id, now, erased=False)
        return len(expired)


def _required_uuid(text: str, field: str) -> UUID:
    violations: list[FieldViolation] = []
    parsed = parse_uuid(text, field, violations)
    if violations:
        raise invalid(violations)
    assert parsed is not None
    return parsed
