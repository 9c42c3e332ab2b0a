"""The hash chain and the Merkle blocks: canonical encoding of entries, roots and audit paths. Pure.

Canonical encoding of an entry (version 1): UTF-8 JSON with keys sorted, no whitespace, ASCII only, of
``{"v": 1, "organization_id", "sequence", "kind", "transfer_id", "debit_account_id", "credit_account_id",
"currency", "amount_minor", "occurred_at_us"}`` — ids as lower-case canonical UUID strings, ``kind`` the EntryKind
number, ``occurred_at_us`` integer microseconds since the Unix epoch (UTC). Verification lives in ``proof.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from services.ledger.proof import GENESIS_HASH, entry_hash, leaf_hash, node_hash

CANONICAL_VERSION = 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    organization_id: uuid.UUID
    sequence: int
    kind: int
    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    currency: str
    amount_minor: int
    occurred_at: dt.datetime
    previous_hash: bytes = GENESIS_HASH
    entry_hash: bytes = b""


def _micros(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def canonical_encoding(entry: ChainEntry) -> bytes:
    """The v1 encoding, written out by hand in sorted key order (``json.dumps`` with ``sort_keys`` costs several
    times more per entry); ``tests/unit/ledger/test_chain.py`` checks it byte for byte against ``json.dumps``."""
    return (
        f'{{"amount_minor":{int(entry.amount_minor)},"credit_account_id":"{entry.credit_account_id}",'
        f'"currency":{json.dumps(entry.currency, ensure_ascii=True)},"debit_account_id":"{entry.debit_account_id}",'
        f'"kind":{int(entry.kind)},"occurred_at_us":{_micros(entry.occurred_at)},'
        f'"organization_id":"{entry.organization_id}","sequence":{int(entry.sequence)},'
        f'"transfer_id":"{entry.transfer_id}","v":{CANONICAL_VERSION}}}'
    ).encode("ascii")


def canonical_encoding_reference(entry: ChainEntry) -> bytes:
    """The v1 encoding as its definition reads (the docstring of this module); used by tests."""
    body = {
        "v": CANONICAL_VERSION,
        "organization_id": str(entry.organization_id),
        "sequence": entry.sequence,
        "kind": entry.kind,
        "transfer_id": str(entry.transfer_id),
        "debit_account_id": str(entry.debit_account_id),
        "credit_account_id": str(entry.credit_account_id),
        "currency": entry.currency,
        "amount_minor": entry.amount_minor,
        "occurred_at_us": _micros(entry.occurred_at),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link(entry: ChainEntry, previous_hash: bytes) -> ChainEntry:
    """The entry with its previous hash and its own hash filled in."""
    return ChainEntry(
        organization_id=entry.organization_id,
        sequence=entry.sequence,
        kind=entry.kind,
        transfer_id=entry.transfer_id,
        debit_account_id=entry.debit_account_id,
        credit_account_id=entry.credit_account_id,
        currency=entry.currency,
        amount_minor=entry.amount_minor,
        occurred_at=entry.occurred_at,
        previous_hash=previous_hash,
        entry_hash=entry_hash(previous_hash, canonical_encoding(entry)),
    )


def first_broken(entries: list[ChainEntry], previous_hash: bytes) -> int | None:
    """The sequence of the first entry whose link or hash does not recompute, or None."""
    expected_previous = previous_hash
    for entry in entries:
        recomputed = entry_hash(expected_previous, canonical_encoding(entry))
        if entry.previous_hash != expected_previous or entry.entry_hash != recomputed:
            return entry.sequence
        expected_previous = entry.entry_hash
    return None


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(entry_hashes: list[bytes]) -> bytes:
    assert entry_hashes, "a block has at least one entry"
    return _root([leaf_hash(h) for h in entry_hashes])


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _largest_power_of_two_below(len(leaves))
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def audit_path(entry_hashes: list[bytes], leaf_index: int) -> list[bytes]:
    """Sibling hashes from the leaf up (RFC 9162 PATH)."""
    assert 0 <= leaf_index < len(entry_hashes)
    return _path(leaf_index, [leaf_hash(h) for h in entry_hashes])


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _largest_power_of_two_below(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _root(leaves[:k])]
