"""Hash chain and Merkle proofs: the canonical encoding is stable, any edit breaks the chain at that entry, and
every leaf's audit path verifies with the offline verifier (and a wrong one does not)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from services.ledger.chain import (
    ChainEntry,
    audit_path,
    canonical_encoding,
    canonical_encoding_reference,
    first_broken,
    link,
    merkle_root,
)
from services.ledger.proof import GENESIS_HASH, verify_inclusion

ORG = uuid.UUID("00000000-0000-7000-8000-000000000001")
MOMENT = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def _chain(count: int) -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    previous = GENESIS_HASH
    for sequence in range(1, count + 1):
        entry = link(
            ChainEntry(
                ORG,
                sequence,
                1,
                uuid.UUID(int=sequence),
                uuid.UUID(int=1),
                uuid.UUID(int=2),
                "EUR",
                sequence * 10,
                MOMENT,
            ),
            previous,
        )
        entries.append(entry)
        previous = entry.entry_hash
    return entries


def test_canonical_encoding_is_documented_json() -> None:
    entry = _chain(1)[0]
    assert canonical_encoding(entry) == (
        b'{"amount_minor":10,"credit_account_id":"00000000-0000-0000-0000-000000000002","currency":"EUR",'
        b'"debit_account_id":"00000000-0000-0000-0000-000000000001","kind":1,'
        b'"occurred_at_us":1767323045678901,"organization_id":"00000000-0000-7000-8000-000000000001",'
        b'"sequence":1,"transfer_id":"00000000-0000-0000-0000-000000000001","v":1}'
    )


_ENTRIES = st.builds(
    ChainEntry,
    organization_id=st.uuids(),
    sequence=st.integers(1, 2**63 - 1),
    kind=st.integers(1, 5),
    transfer_id=st.uuids(),
    debit_account_id=st.uuids(),
    credit_account_id=st.uuids(),
    currency=st.text(min_size=1, max_size=12),
    amount_minor=st.integers(1, 2**63 - 1),
    occurred_at=st.datetimes(
        min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31), timezones=st.just(dt.UTC)
    ),
)


@given(_ENTRIES)
def test_the_hand_written_encoding_is_byte_for_byte_the_json_definition(entry: ChainEntry) -> None:
    assert canonical_encoding(entry) == canonical_encoding_reference(entry)


@given(st.integers(1, 40), st.data())
def test_an_edit_is_found_at_the_edited_entry(count: int, data: st.DataObject) -> None:
    entries = _chain(count)
    assert first_broken(entries, GENESIS_HASH) is None
    index = data.draw(st.integers(0, count - 1))
    tampered = list(entries)
    tampered[index] = replace(entries[index], amount_minor=entries[index].amount_minor + 1)
    assert first_broken(tampered, GENESIS_HASH) == index + 1


@given(st.integers(1, 70), st.data())
def test_every_leaf_proves_inclusion(count: int, data: st.DataObject) -> None:
    hashes = [e.entry_hash for e in _chain(count)]
    root = merkle_root(hashes)
    index = data.draw(st.integers(0, count - 1))
    path = audit_path(hashes, index)
    assert verify_inclusion(hashes[index], index, count, path, root)
    other = (index + 1) % count
    if other != index:
        assert not verify_inclusion(hashes[other], index, count, path, root)
    assert not verify_inclusion(hashes[index], index, count, path, bytes(32))
