"""Envelope encryption and blind indexes: AES-256-GCM under per-subject data keys, data keys wrapped by a versioned
key-encryption key (KEK) behind a small KMS interface, and HMAC-SHA-256 blind indexes under a separate key.

Ciphertext format (fields and wrapped keys): ``0x01 || nonce (12 bytes) || AES-GCM ciphertext+tag``. The associated
data binds each ciphertext to its tenant, row and field (``contacts.field.v1|<org>|contact|<id>|phone``), so a
ciphertext copied into another row or column fails authentication instead of decrypting.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.contacts.domain import CiphertextInvalid, KeyVersionUnavailable
from services.contacts.limits import KEY_BYTES, KEY_VERSION_MAX
from services.kit.config import Env, decode_key

CIPHERTEXT_FORMAT = b"\x01"
NONCE_BYTES = 12


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return CIPHERTEXT_FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Decrypts ``seal``'s output; a tampered ciphertext, a wrong key or wrong associated data is DATA_LOSS."""
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != CIPHERTEXT_FORMAT:
        raise CiphertextInvalid()
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], associated_data)
    except InvalidTag:
        raise CiphertextInvalid() from None


def field_aad(organization_id: UUID, table: str, row_id: UUID, field: str) -> bytes:
    return f"contacts.field.v1|{organization_id}|{table}|{row_id}|{field}".encode()


def data_key_aad(organization_id: UUID, customer_id: UUID, kek_version: int) -> bytes:
    return f"contacts.data_key.v1|{organization_id}|{customer_id}|kek:{kek_version}".encode()


SIGNING_KEY_AAD_PREFIX = "contacts.signing_key.v1"


def signing_key_aad(signing_key_id: str, kek_version: int) -> bytes:
    return f"{SIGNING_KEY_AAD_PREFIX}|{signing_key_id}|kek:{kek_version}".encode()


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


class Kms(Protocol):
    """Where the KEK lives. Dev: a local key ring from secrets; prod: a cloud KMS whose keys never leave it."""

    def versions(self) -> frozenset[int]: ...

    async def wrap(self, version: int, data_key: bytes, associated_data: bytes) -> bytes: ...

    async def unwrap(self, version: int, wrapped: bytes, associated_data: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Versioned 32-byte keys. Never printed: ``repr`` shows the versions only."""

    name: str
    keys: Mapping[int, bytes]

    def __repr__(self) -> str:
        return f"KeyRing({self.name}, versions={sorted(self.keys)})"

    def key(self, version: int) -> bytes:
        key = self.keys.get(version)
        if key is None:
            raise KeyVersionUnavailable(f"{self.name} version {version} is not configured")
        return key

    @property
    def newest_version(self) -> int:
        return max(self.keys)


class LocalKms:
    """The KEK ring held in process memory (dev and tests): wraps data keys with AES-256-GCM."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def versions(self) -> frozenset[int]:
        return frozenset(self._ring.keys)

    async def wrap(self, version: int, data_key: bytes, associated_data: bytes) -> bytes:
        return seal(self._ring.key(version), data_key, associated_data)

    async def unwrap(self, version: int, wrapped: bytes, associated_data: bytes) -> bytes:
        return open_sealed(self._ring.key(version), wrapped, associated_data)


class BlindIndexer:
    """HMAC-SHA-256 of the normalised (E.164) number under the blind-index key of a version."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def versions(self) -> frozenset[int]:
        return frozenset(self._ring.keys)

    def index(self, version: int, e164: str) -> bytes:
        return hmac.new(self._ring.key(version), b"phone|" + e164.encode(), hashlib.sha256).digest()

    def lookup_indexes(self, current_version: int, e164: str) -> list[bytes]:
        """Indexes under the current version and its neighbours: lookups keep working while a reindex runs (rows
        under the previous version), and while this replica's cached version lags a rotation that just started
        (rows already under the next one)."""
        candidates = (current_version, current_version - 1, current_version + 1)
        versions = [v for v in candidates if v in self._ring.keys]
        return [self.index(version, e164) for version in versions]

    def request_digest(self, canonical: bytes) -> bytes:
        """Keyed digest of a request that may contain a secret, for idempotency comparisons. Uses version 1 of
        the ring on purpose: replays must compare equal across blind-index rotations."""
        return hmac.new(self._ring.key(min(self._ring.keys)), b"request|" + canonical, hashlib.sha256).digest()


def load_key_ring(env: Env, name: str) -> KeyRing:
    """``NAME`` is version 1; ``NAME_V2`` .. ``NAME_V16`` are further versions (each also as ``*_FILE``)."""
    keys: dict[int, bytes] = {}
    first = env.secret(name)
    assert first is not None
    keys[1] = decode_key(first, name)
    for version in range(2, KEY_VERSION_MAX + 1):
        versioned_name = f"{name}_V{version}"
        raw = env.secret(versioned_name, required=False)
        if raw is not None:
            keys[version] = decode_key(raw, versioned_name)
    return KeyRing(name=name, keys=keys)
