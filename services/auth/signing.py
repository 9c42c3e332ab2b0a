"""Token-signing keys: Ed25519 keys created and rotated in auth's database (private halves sealed with AES-GCM),
the active one cached briefly in memory to sign access tokens, the published ones served as the JWKS.

Rotation makes a new key ACTIVE and the old one RETIRING; the old key stays in the JWKS until the last token it can
have signed has expired (longest token lifetime + clock-skew leeway + how long another replica may still be signing
with it from its cache), then it is RETIRED (left out).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from services.auth import limits
from services.auth.domain_records import SigningKeyRecord
from services.auth.sealing import PURPOSE_SIGNING_KEYS, Sealer
from services.auth.service import AuthStorePort, AuthTransaction
from services.kit.tokens import ALGORITHM, CLOCK_SKEW_LEEWAY_S

KEY_ID_PREFIX = "auth-"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def public_jwk(key: SigningKeyRecord) -> dict[str, Any]:
    return {"kty": "OKP", "crv": "Ed25519", "x": key.public_x, "kid": key.key_id, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True, slots=True)
class _ActiveKey:
    key_id: str
    private_key: Ed25519PrivateKey
    loaded_at: float


class KeyRing:
    def __init__(
        self, store: AuthStorePort, master_key: bytes, *, clock: Callable[[], float], max_token_ttl_s: int
    ) -> None:
        self._store = store
        self._sealer = Sealer(master_key, PURPOSE_SIGNING_KEYS)
        self._clock = clock
        # A retiring key stays published this long after it stopped signing.
        self.publish_after_retiring_s = max_token_ttl_s + CLOCK_SKEW_LEEWAY_S + int(limits.ACTIVE_KEY_CACHE_S) + 1
        self._active: _ActiveKey | None = None

    def new_key(self, now_s: float) -> SigningKeyRecord:
        private_key = Ed25519PrivateKey.generate()
        key_id = f"{KEY_ID_PREFIX}{uuid.uuid4().hex[:16]}"
        raw_private = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw_public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return SigningKeyRecord(
            key_id=key_id,
            status="active",
            public_x=_b64url(raw_public),
            private_key_sealed=self._sealer.seal(raw_private, key_id.encode()),
            created_at=now_s,
            retiring_at=None,
            retired_at=None,
        )

    def _load(self, record: SigningKeyRecord) -> _ActiveKey:
        raw = self._sealer.open(record.private_key_sealed, record.key_id.encode())
        return _ActiveKey(record.key_id, Ed25519PrivateKey.from_private_bytes(raw), time.monotonic())

    async def ensure_active(self, tx: AuthTransaction) -> SigningKeyRecord:
        """The active key, created on first use (under a lock, so two replicas never create two)."""
        active = await tx.active_key()
        if active is not None:
            return active
        await tx.lock_signing_keys()
        active = await tx.active_key()
        if active is None:
            active = self.new_key(self._clock())
            await tx.insert_key(active, None)
        return active

    async def _signing_key(self) -> _ActiveKey:
        cached = self._active
        if cached is not None and time.monotonic() - cached.loaded_at < limits.ACTIVE_KEY_CACHE_S:
            return cached
        async with self._store.transaction() as tx:
            record = await self.ensure_active(tx)
        self._active = self._load(record)
        return self._active

    async def sign(self, claims: dict[str, object]) -> str:
        key = await self._signing_key()
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.key_id})

    async def rotate(self, tx: AuthTransaction, request_id: str) -> tuple[SigningKeyRecord, SigningKeyRecord, bool]:
        """(new active key, previous key now retiring, rotated now); a repeated request id returns the first
        rotation's keys and False."""
        await tx.lock_signing_keys()
        earlier = await tx.key_by_rotation_request(request_id)
        if earlier is not None:
            previous = await tx.previous_key(earlier.created_at)
            assert previous is not None
            return earlier, previous, False
        now_s = self._clock()
        previous = await self.ensure_active(tx)
        await tx.retire_key(previous.key_id, now_s, now_s + self.publish_after_retiring_s)
        new = self.new_key(now_s)
        await tx.insert_key(new, request_id)
        self._active = None
        retired = await tx.get_key(previous.key_id)
        assert retired is not None
        assert retired.status == "retiring"
        return new, retired, True

    async def published(self) -> Sequence[dict[str, Any]]:
        async with self._store.transaction() as tx:
            await self.ensure_active(tx)
            keys = await tx.published_keys(self._clock())
        return [public_jwk(key) for key in keys]


class OwnJwksSource:
    """Auth verifies incoming tokens from its own key table (no RPC to itself)."""

    def __init__(self, key_ring: Callable[[], KeyRing]) -> None:
        self._key_ring = key_ring

    async def fetch(self) -> Sequence[dict[str, Any]]:
        return await self._key_ring().published()
