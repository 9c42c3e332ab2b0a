"""At-rest protection of auth's secrets: AES-256-GCM sealing and keyed hashes, all from one master key.

The master key (``AUTH_SIGNING_KEY_ENCRYPTION_KEY``) never encrypts anything itself: HKDF-SHA256 derives one subkey
per purpose, so a ciphertext of one kind can never be opened as another. Sealed values carry a version byte and a
random 96-bit nonce, and bind the row they belong to as associated data (a signing key's id, a principal's id), so a
ciphertext copied to another row does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_VERSION = 1
NONCE_BYTES = 12
SUBKEY_BYTES = 32

PURPOSE_SIGNING_KEYS = "signing-keys"
PURPOSE_TOTP = "totp-secrets"
PURPOSE_COUNTERS = "brute-force-counters"
PURPOSE_RECOVERY_CODES = "recovery-codes"
PURPOSE_REFRESH_SUCCESSOR = "refresh-successor"


def derive_subkey(master_key: bytes, purpose: str) -> bytes:
    assert len(master_key) == SUBKEY_BYTES
    return HKDF(algorithm=hashes.SHA256(), length=SUBKEY_BYTES, salt=None, info=purpose.encode()).derive(master_key)


class Sealer:
    """AES-256-GCM with one derived key."""

    def __init__(self, master_key: bytes, purpose: str) -> None:
        self._aead = AESGCM(derive_subkey(master_key, purpose))

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes([SEALED_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        assert sealed[0] == SEALED_VERSION, "sealed with an unknown format version"
        nonce = sealed[1 : 1 + NONCE_BYTES]
        return self._aead.decrypt(nonce, sealed[1 + NONCE_BYTES :], associated_data)


class KeyedHash:
    """HMAC-SHA-256 with one derived key: lookups of high-entropy secrets and pseudonymous counter keys."""

    def __init__(self, master_key: bytes, purpose: str) -> None:
        self._key = derive_subkey(master_key, purpose)

    def digest(self, value: str) -> bytes:
        return hmac.new(self._key, value.encode(), hashlib.sha256).digest()


def sha256(value: str) -> bytes:
    """Hash of a random, high-entropy token (refresh tokens, invitations, client secrets): no salt needed."""
    return hashlib.sha256(value.encode()).digest()
