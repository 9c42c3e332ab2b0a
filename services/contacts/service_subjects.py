"""Use cases of subject rights: the access log ("who read my data"), its verification, export and erasure.

Erasure destroys the subject's data key (crypto-shredding every ciphertext under it), tombstones the rows and
returns a receipt signed with the vault's Ed25519 key, whose private half is kept wrapped by the KEK.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller, access_entry
from services.contacts.contact_reader import CONTACT_TABLE, PHONE_FIELD, MaskedContact
from services.contacts.domain import Contact, ContactNotFound, phone_from_e164
from services.contacts.domain_access_log import (
    TENANT_WIDE_SUBJECT,
    AccessAction,
    AccessLogEntry,
    ChainVerdict,
    verify_chain,
)
from services.contacts.domain_cards import CardSecret
from services.contacts.envelope import DataKeyTx, Envelope, decrypt_field
from services.contacts.limits import (
    ACCESS_LOG_CHAIN_BATCH_MAX,
    ERASURE_REASON_CHARS_MAX,
    VERIFY_ACCESS_LOG_ENTRIES_MAX,
)
from services.contacts.receipts import ReceiptSigner, SigningKeyTx
from services.contacts.store_secrets import ReceiptRecord
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid, uuid7
from services.kit.paging import decode_page_token, next_page, page_size


class SubjectsTx(DataKeyTx, SigningKeyTx, Protocol):
    async def append_access(self, entry: AccessLogEntry) -> None: ...

    async def chain_pending(self, organization_id: UUID, limit: int) -> int: ...

    async def tenants_with_unchained_entries(self, limit: int) -> list[UUID]: ...

    async def exported_access_log(self, organization_id: UUID, export_id: UUID) -> str | None: ...

    async def list_access(
        self,
        organization_id: UUID,
        customer_id: UUID | None,
        action: AccessAction | None,
        start_time: datetime | None,
        end_time: datetime | None,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AccessLogEntry]: ...

    async def count_access(self, organization_id: UUID, customer_id: UUID) -> int: ...

    async def chained_entries(
        self, organization_id: UUID, first_sequence: int, last_sequence: int | None, limit: int
    ) -> tuple[bytes, list[AccessLogEntry]]: ...

    async def contacts_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[Contact]: ...

    async def cards_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[CardSecret]: ...

    async def erase_subject_rows(
        self, organization_id: UUID, customer_id: UUID, now: datetime
    ) -> tuple[int, int]: ...

    async def erase_data_key(self, organization_id: UUID, customer_id: UUID, now: datetime) -> None: ...

    async def receipt(self, organization_id: UUID, request_id: UUID) -> ReceiptRecord | None: ...

    async def insert_receipt(self, organization_id: UUID, request_id: UUID, receipt: ReceiptRecord) -> None: ...


class SubjectsStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[SubjectsTx]: ...


@dataclass(frozen=True, slots=True)
class AccessLogPage:
    entries: list[AccessLogEntry]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class SubjectExport:
    customer_id: UUID
    contacts: list[MaskedContact]
    card_secrets: list[CardSecret]
    access_log_entry_count: int
    exported_at: datetime
    access_log_entry_id: UUID


class SubjectsService:
    def __init__(
        self, store: SubjectsStore, envelope: Envelope, signer: ReceiptSigner, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._envelope = envelope
        self._signer = signer
        self._clock = clock

    def _subject(self, caller: Caller, customer_id_text: str, *, required: bool) -> UUID | None:
        violations: list[FieldViolation] = []
        customer_id = parse_uuid(
            customer_id_text, "customer_id", violations, required=required and not caller.is_customer
        )
        if violations:
            raise invalid(violations)
        if caller.customer_id is not None:
            if customer_id is not None and customer_id != caller.customer_id:
                raise ContactNotFound()
            return caller.customer_id
        return customer_id

    async def chain_access_log(self, tenants_max: int) -> int:
        """The chainer job: gives pending entries of every tenant their sequence and hash; returns how many."""
        async with self._store.transaction() as tx:
            tenants = await tx.tenants_with_unchained_entries(tenants_max)
        chained = 0
        for organization_id in tenants:
            async with self._store.transaction() as tx:
                chained += await tx.chain_pending(organization_id, ACCESS_LOG_CHAIN_BATCH_MAX)
        return chained

    async def list_access_log(
        self,
        caller: Caller,
        customer_id_text: str,
        requested_page_size: int,
        page_token: str,
        action_value: int,
        start_time: datetime | None,
        end_time: datetime | None,
        export_id_text: str = "",
    ) -> AccessLogPage:
        customer_id = self._subject(caller, customer_id_text, required=False)
        export_violations: list[FieldViolation] = []
        export_id = parse_uuid(export_id_text, "export_id", export_violations, required=False)
        if export_violations:
            raise invalid(export_violations)
        action: AccessAction | None = None
        if action_value:
            try:
                action = AccessAction(action_value)
            except ValueError:
                raise invalid([FieldViolation("action", "is not an access action")]) from None
        size = page_size(requested_page_size)
        filters = {
            "customer_id": str(customer_id or ""),
            "action": int(action or 0),
            "start": start_time.isoformat() if start_time else "",
            "end": end_time.isoformat() if end_time else "",
        }
        if export_id is not None:
            filters["export"] = str(export_id)
        cursor = decode_page_token(page_token, filters)
        before = (datetime.fromisoformat(str(cursor["at"])), UUID(str(cursor["id"]))) if cursor is not None else None
        async with self._store.transaction() as tx:
            if export_id is not None and cursor is None:
                await self._audit_export_once(tx, caller, export_id, customer_id, filters)
            await tx.chain_pending(caller.organization_id, ACCESS_LOG_CHAIN_BATCH_MAX)
        async with self._store.transaction() as tx:
            entries = await tx.list_access(
                caller.organization_id, customer_id, action, start_time, end_time, before, size + 1
            )
        page, next_token = next_page(
            entries,
            size,
            lambda last: {"at": last.occurred_at.isoformat(), "id": str(last.access_log_entry_id)},
            filters,
        )
        return AccessLogPage(page, next_token)

    async def _audit_export_once(
        self,
        tx: SubjectsTx,
        caller: Caller,
        export_id: UUID,
        customer_id: UUID | None,
        filters: Mapping[str, object],
    ) -> None:
        """A read marked as an export is itself an access-log entry, once per export (a retried first page replays);
        the same export id with other filters is ``IDEMPOTENCY_KEY_REUSED``."""
        wanted = {name: value for name, value in filters.items() if name != "export"}
        justification = f"export_id={export_id}; filters={json.dumps(wanted, sort_keys=True)}"
        recorded = await tx.exported_access_log(caller.organization_id, export_id)
        if recorded is not None:
            if recorded != justification:
                raise IdempotencyKeyReused("export_id", "filters")
            return
        subject = customer_id or TENANT_WIDE_SUBJECT
        entry = access_entry(
            caller, AccessAction.ACCESS_LOG_EXPORT, subject, self._clock(), justification=justification
        )
        await tx.append_access(entry)

    async def verify_access_log(self, caller: Caller, start_sequence: int, end_sequence: int) -> ChainVerdict:
        violations: list[FieldViolation] = []
        if start_sequence < 0:
            violations.append(FieldViolation("start_sequence", "must not be negative"))
        if end_sequence < 0 or (end_sequence and end_sequence < start_sequence):
            violations.append(FieldViolation("end_sequence", "must be 0 (the head) or at least start_sequence"))
        if violations:
            raise invalid(violations)
        async with self._store.transaction() as tx:
            await tx.chain_pending(caller.organization_id, ACCESS_LOG_CHAIN_BATCH_MAX)
        first = max(start_sequence, 1)
        async with self._store.transaction() as tx:
            previous, entries = await tx.chained_entries(
                caller.organization_id, first, end_sequence or None, VERIFY_ACCESS_LOG_ENTRIES_MAX
            )
        return verify_chain(previous, first, entries)

    async def export_subject_data(self, caller: Caller, customer_id_text: str) -> SubjectExport:
        customer_id = self._subject(caller, customer_id_text, required=True)
        assert customer_id is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            contacts = await tx.contacts_of_subject(caller.organization_id, customer_id)
            masked: list[MaskedContact] = []
            if contacts:
                data_key = await self._envelope.existing_key(tx, caller.organization_id, customer_id)
                for contact in contacts:
                    assert contact.phone_ciphertext is not None
                    e164 = decrypt_field(
                        data_key,
                        contact.organization_id,
                        CONTACT_TABLE,
                        contact.contact_id,
                        PHONE_FIELD,
                        contact.phone_ciphertext,
                    )
                    masked.append(MaskedContact(contact, phone_from_e164(e164).masked))
            cards = await tx.cards_of_subject(caller.organization_id, customer_id)
            entry = access_entry(caller, AccessAction.EXPORT, customer_id, now)
            await tx.append_access(entry)
            count = await tx.count_access(caller.organization_id, customer_id)
        return SubjectExport(customer_id, masked, cards, count, now, entry.access_log_entry_id)

    async def erase_subject(
        self, caller: Caller, customer_id_text: str, reason: str, request_id_text: str
    ) -> ReceiptRecord:
        violations: list[FieldViolation] = []
        request_id = parse_uuid(request_id_text, "request_id", violations)
        reason_text = reason.strip()
        if not reason_text or len(reason_text) > ERASURE_REASON_CHARS_MAX:
            violations.append(FieldViolation("reason", f"is required, at most {ERASURE_REASON_CHARS_MAX} characters"))
        if violations:
            raise invalid(violations)
        customer_id = self._subject(caller, customer_id_text, required=True)
        assert customer_id is not None
        assert request_id is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            replayed = await tx.receipt(caller.organization_id, request_id)
            if replayed is not None:
                if replayed.customer_id != customer_id:
                    raise ContactNotFound()
                return replayed
            contacts_erased, cards_erased = await tx.erase_subject_rows(caller.organization_id, customer_id, now)
            await tx.erase_data_key(caller.organization_id, customer_id, now)
            await tx.append_access(
                access_entry(caller, AccessAction.ERASURE, customer_id, now, justification=reason_text)
            )
            receipt_id = uuid7()
            statement = json.dumps(
                {
                    "erasure_receipt_id": str(receipt_id),
                    "organization_id": str(caller.organization_id),
                    "customer_id": str(customer_id),
                    "contacts_erased": contacts_erased,
                    "card_secrets_erased": cards_erased,
                    "erased_at": now.isoformat(),
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            signing_key_id, signature = await self._signer.sign(tx, statement, now)
            receipt = ReceiptRecord(
                receipt_id, customer_id, contacts_erased, cards_erased, now, statement, signature, signing_key_id
            )
            await tx.insert_receipt(caller.organization_id, request_id, receipt)
            return receipt
