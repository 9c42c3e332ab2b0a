"""Proto ⇄ domain conversions for the servicer (no rules here: only shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.contacts.contact_reader import MaskedContact
from services.contacts.domain_access_log import AccessLogEntry
from services.contacts.domain_cards import CardSecret
from services.contacts.domain_keys import BackupInfo, KeyJob
from services.contacts.store_secrets import ReceiptRecord
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import (
    contacts_access_log_pb2,
    contacts_card_secrets_pb2,
    contacts_contact_pb2,
    contacts_keys_pb2,
    contacts_subjects_pb2,
)


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def optional_time(message: Timestamp, present: bool) -> datetime | None:
    return message.ToDatetime(tzinfo=UTC) if present else None


def duration_s(message: Duration, present: bool) -> int | None:
    """Whole seconds of a Duration; None when absent (a fraction of a second counts as a second)."""
    if not present:
        return None
    return message.seconds + (1 if message.nanos > 0 else 0)


def contact(view: MaskedContact) -> contacts_contact_pb2.Contact:
    stored = view.contact
    return contacts_contact_pb2.Contact(
        contact_id=str(stored.contact_id),
        customer_id=str(stored.customer_id),
        masked_phone_number=view.masked_phone_number,
        region_code=stored.region_code,
        purposes=sorted(int(p) for p in stored.purposes),  # type: ignore[misc]
        consent_reference=stored.consent_reference,
        retention=Duration(seconds=stored.retention_s),
        retain_until=timestamp(stored.retain_until),
        alert_thresholds=[
            money_pb2.Money(currency=t.currency, amount_minor=t.amount_minor) for t in stored.alert_thresholds
        ],
        discoverable=stored.discoverable,
        default_account_id=str(stored.default_account_id or ""),
        discoverable_account_ids=[str(a) for a in stored.discoverable_account_ids],
        created_at=timestamp(stored.created_at),
        updated_at=timestamp(stored.updated_at),
    )


def access_log_entry(entry: AccessLogEntry) -> contacts_access_log_pb2.AccessLogEntry:
    return contacts_access_log_pb2.AccessLogEntry(
        access_log_entry_id=str(entry.access_log_entry_id),
        sequence=entry.sequence or 0,
        customer_id=str(entry.customer_id),
        contact_id=str(entry.contact_id or ""),
        card_secret_id=str(entry.card_secret_id or ""),
        action=int(entry.action),  # type: ignore[arg-type]
        actor_principal_id=entry.actor_principal_id,
        on_behalf_of_principal_id=entry.on_behalf_of_principal_id,
        reveal_purpose=entry.reveal_purpose,  # type: ignore[arg-type]
        justification=entry.justification,
        trace_id=entry.trace_id,
        occurred_at=timestamp(entry.occurred_at),
        entry_hash=entry.entry_hash or b"",
    )


def card_secret(card: CardSecret) -> contacts_card_secrets_pb2.CardSecret:
    return contacts_card_secrets_pb2.CardSecret(
        card_secret_id=str(card.card_secret_id),
        customer_id=str(card.customer_id),
        last_four=card.last_four,
        expiry_month=card.expiry_month,
        expiry_year=card.expiry_year,
        created_at=timestamp(card.created_at),
    )


def key_job(job: KeyJob) -> contacts_keys_pb2.KeyJob:
    return contacts_keys_pb2.KeyJob(
        key_job_id=str(job.key_job_id),
        kind=int(job.kind),  # type: ignore[arg-type]
        state=int(job.state),  # type: ignore[arg-type]
        from_key_version=job.from_key_version,
        to_key_version=job.to_key_version,
        items_total=job.items_total,
        items_done=job.items_done,
        started_at=timestamp(job.started_at),
        updated_at=timestamp(job.updated_at),
        finished_at=timestamp(job.finished_at),
        error=job.error,
    )


def backup(info: BackupInfo) -> contacts_keys_pb2.Backup:
    return contacts_keys_pb2.Backup(
        backup_id=str(info.backup_id),
        location=info.location,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
        backup_key_version=info.backup_key_version,
        contact_count=info.contact_count,
        card_secret_count=info.card_secret_count,
        created_at=timestamp(info.created_at),
    )


def receipt(record: ReceiptRecord) -> contacts_subjects_pb2.ErasureReceipt:
    return contacts_subjects_pb2.ErasureReceipt(
        erasure_receipt_id=str(record.erasure_receipt_id),
        customer_id=str(record.customer_id),
        contacts_erased=record.contacts_erased,
        card_secrets_erased=record.card_secrets_erased,
        erased_at=timestamp(record.erased_at),
        statement=record.statement,
        signature=record.signature,
        signing_key_id=record.signing_key_id,
    )
