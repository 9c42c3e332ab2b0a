"""The vault's erasure-receipt signing key: Ed25519, created on first use, private half wrapped by the KEK.

``signing_key_id`` is the first 16 hex digits of SHA-256 over the raw public key; verifiers get the public key from
the ``signing_key`` table (or a future ``GetReceiptKey`` RPC).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from services.contacts.crypto import Kms, signing_key_aad
from services.contacts.store_secrets import SigningKeyRecord


class SigningKeyTx(Protocol):
    async def key_versions(self) -> tuple[int, int]: ...

    async def signing_key(self) -> SigningKeyRecord | None: ...

    async def insert_signing_key(self, record: SigningKeyRecord, now: datetime) -> None: ...


class ReceiptSigner:
    def __init__(self, kms: Kms) -> None:
        self._kms = kms

    async def sign(self, tx: SigningKeyTx, statement: bytes, now: datetime) -> tuple[str, bytes]:
        record = await tx.signing_key()
        if record is None:
            await tx.insert_signing_key(await self._new_key(tx), now)
            record = await tx.signing_key()
            assert record is not None
        raw = await self._kms.unwrap(
            record.kek_version, record.wrapped_private_key, signing_key_aad(record.signing_key_id, record.kek_version)
        )
        return record.signing_key_id, Ed25519PrivateKey.from_private_bytes(raw).sign(statement)

    async def _new_key(self, tx: SigningKeyTx) -> SigningKeyRecord:
        kek_version, _ = await tx.key_versions()
        private_key = Ed25519PrivateKey.generate()
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        key_id = hashlib.sha256(public).hexdigest()[:16]
        raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        wrapped = await self._kms.wrap(kek_version, raw, signing_key_aad(key_id, kek_version))
        return SigningKeyRecord(key_id, kek_version, wrapped, public)
