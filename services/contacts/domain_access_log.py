"""The access log's pure rules: actions, entries and the hash chain.

``entry_hash = SHA-256(previous_hash || canonical(entry))`` with a 32-zero-byte hash before sequence 1. The canonical
encoding is a length-prefixed list of the entry's fields, so no field can bleed into the next. The value read is
never part of an entry.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

GENESIS_HASH = bytes(32)


class AccessAction(enum.IntEnum):
    """Values match ``wallet.contacts.v1.AccessAction``."""

    REVEAL = 1
    RESOLVE = 2
    NOTIFICATION = 3
    EXPORT = 4
    ERASURE = 5
    CARD_SECRET_REVEAL = 6
    ACCESS_LOG_EXPORT = 7


# The subject of an access-log export that lists every subject of the tenant (the column is NOT NULL).
TENANT_WIDE_SUBJECT = UUID(int=0)


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    organization_id: UUID
    access_log_entry_id: UUID
    customer_id: UUID
    contact_id: UUID | None
    card_secret_id: UUID | None
    action: AccessAction
    actor_principal_id: str
    on_behalf_of_principal_id: str
    reveal_purpose: int
    justification: str
    trace_id: str
    occurred_at: datetime
    sequence: int | None = None
    entry_hash: bytes | None = None


def canonical_entry(entry: AccessLogEntry, sequence: int) -> bytes:
    fields = [
        "access_log.v1",
        str(entry.organization_id),
        str(sequence),
        str(entry.access_log_entry_id),
        str(entry.customer_id),
        str(entry.contact_id or ""),
        str(entry.card_secret_id or ""),
        str(int(entry.action)),
        entry.actor_principal_id,
        entry.on_behalf_of_principal_id,
        str(entry.reveal_purpose),
        entry.justification,
        entry.trace_id,
        # Microseconds since the epoch: Postgres keeps microseconds, so the hash survives a round trip.
        str(round(entry.occurred_at.timestamp() * 1_000_000)),
    ]
    encoded = bytearray()
    for field in fields:
        raw = field.encode()
        encoded += len(raw).to_bytes(4, "big") + raw
    return bytes(encoded)


def chain_hash(previous_hash: bytes, entry: AccessLogEntry, sequence: int) -> bytes:
    assert len(previous_hash) == 32
    return hashlib.sha256(previous_hash + canonical_entry(entry, sequence)).digest()


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    intact: bool
    first_broken_sequence: int
    entries_checked: int


def verify_chain(previous_hash: bytes, first_sequence: int, entries: Iterable[AccessLogEntry]) -> ChainVerdict:
    """Recomputes the chain from ``previous_hash`` (the hash before ``first_sequence``); names the first entry
    whose stored hash or position does not match."""
    expected_sequence = first_sequence
    checked = 0
    for entry in entries:
        checked += 1
        if entry.sequence != expected_sequence or entry.entry_hash is None:
            return ChainVerdict(False, expected_sequence, checked)
        recomputed = chain_hash(previous_hash, entry, expected_sequence)
        if recomputed != entry.entry_hash:
            return ChainVerdict(False, expected_sequence, checked)
        previous_hash = recomputed
        expected_sequence += 1
    return ChainVerdict(True, 0, checked)
