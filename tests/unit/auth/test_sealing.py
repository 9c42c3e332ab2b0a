"""At-rest sealing: AES-GCM bound to its row and purpose, keyed hashes per purpose."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from services.auth.sealing import PURPOSE_SIGNING_KEYS, PURPOSE_TOTP, KeyedHash, Sealer


def test_seal_round_trip_and_binding() -> None:
    master = os.urandom(32)
    sealer = Sealer(master, PURPOSE_TOTP)
    sealed = sealer.seal(b"secret", b"row-1")
    assert b"secret" not in sealed
    assert sealer.open(sealed, b"row-1") == b"secret"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, b"row-2")
    with pytest.raises(InvalidTag):
        Sealer(master, PURPOSE_SIGNING_KEYS).open(sealed, b"row-1")
    with pytest.raises(InvalidTag):
        Sealer(os.urandom(32), PURPOSE_TOTP).open(sealed, b"row-1")


def test_keyed_hashes_differ_by_purpose_and_key() -> None:
    master = os.urandom(32)
    assert KeyedHash(master, "a").digest("x") == KeyedHash(master, "a").digest("x")
    assert KeyedHash(master, "a").digest("x") != KeyedHash(master, "b").digest("x")
    assert KeyedHash(master, "a").digest("x") != KeyedHash(os.urandom(32), "a").digest("x")
