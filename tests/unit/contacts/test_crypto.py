"""Envelope encryption primitives, key-ring loading and blind indexes (no I/O)."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from services.contacts.crypto import BlindIndexer, KeyRing, LocalKms, field_aad, load_key_ring, open_sealed, seal
from services.contacts.domain import CiphertextInvalid, KeyVersionUnavailable
from services.kit.config import ConfigError, Env


def key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def test_associated_data_binds_a_ciphertext_to_its_row_and_field() -> None:
    key = os.urandom(32)
    organization_id, row = uuid.uuid4(), uuid.uuid4()
    sealed = seal(key, b"+8613812345678", field_aad(organization_id, "contact", row, "phone"))
    assert open_sealed(key, sealed, field_aad(organization_id, "contact", row, "phone")) == b"+8613812345678"
    for aad in (
        field_aad(organization_id, "contact", uuid.uuid4(), "phone"),
        field_aad(uuid.uuid4(), "contact", row, "phone"),
    ):
        with pytest.raises(CiphertextInvalid):
            open_sealed(key, sealed, aad)
    with pytest.raises(CiphertextInvalid):
        open_sealed(os.urandom(32), sealed, field_aad(organization_id, "contact", row, "phone"))
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CiphertextInvalid):
        open_sealed(key, flipped, field_aad(organization_id, "contact", row, "phone"))


async def test_local_kms_wraps_per_version() -> None:
    kms = LocalKms(KeyRing("CONTACTS_KEK", {1: os.urandom(32), 2: os.urandom(32)}))
    wrapped = await kms.wrap(2, b"k" * 32, b"aad")
    assert await kms.unwrap(2, wrapped, b"aad") == b"k" * 32
    with pytest.raises(CiphertextInvalid):
        await kms.unwrap(1, wrapped, b"aad")
    with pytest.raises(KeyVersionUnavailable):
        await kms.wrap(3, b"k" * 32, b"aad")


def test_key_ring_loads_versions_and_refuses_bad_keys() -> None:
    ring = load_key_ring(Env({"CONTACTS_KEK": key_text(), "CONTACTS_KEK_V3": os.urandom(32).hex()}), "CONTACTS_KEK")
    assert sorted(ring.keys) == [1, 3]
    assert "versions=[1, 3]" in repr(ring)
    with pytest.raises(ConfigError, match=r"CONTACTS_KEK \(or CONTACTS_KEK_FILE\) is required"):
        load_key_ring(Env({}), "CONTACTS_KEK")
    with pytest.raises(ConfigError) as caught:
        load_key_ring(Env({"CONTACTS_KEK": "too-short-secret"}), "CONTACTS_KEK")
    assert "too-short-secret" not in str(caught.value)


def test_blind_index_is_keyed_versioned_and_stable() -> None:
    indexer = BlindIndexer(KeyRing("CONTACTS_BLIND_INDEX_KEY", {1: os.urandom(32), 2: os.urandom(32)}))
    assert indexer.index(1, "+8613812345678") == indexer.index(1, "+8613812345678")
    assert indexer.index(1, "+8613812345678") != indexer.index(2, "+8613812345678")
    assert len(indexer.lookup_indexes(1, "+8613812345678")) == 2
    other = BlindIndexer(KeyRing("CONTACTS_BLIND_INDEX_KEY", {1: os.urandom(32)}))
    assert other.index(1, "+8613812345678") != indexer.index(1, "+8613812345678")
