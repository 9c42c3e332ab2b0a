"""A token verifier that remembers successful verifications: what services run in production.

Each call of a busy service carries the same access token again and again (a mobile app reuses one token for its
whole 5-15 minute life); checking its EdDSA signature and claims every time costs a large share of a small call.
This verifier keeps the Principal of a token it verified and answers later calls with it.

Why it is safe:

- **Keyed by SHA-256 of the token**, never the token itself, so the table holds no bearer credential.
- **Bounded**: at most ``max_entries`` entries; the oldest goes first when full. Only successful verifications are
  kept, so forged or expired tokens cannot fill it.
- **Expiry respected**: an entry lives until the earlier of the token's ``exp`` (without the clock-skew leeway the
  full check allows, so never longer than the uncached verifier would accept) and ``ttl_s`` after the first check.
  ``nbf`` was checked before the entry was made; step-up freshness (``auth_time``) is judged on every call by
  ``Principal.has_fresh_step_up``, not cached.
- **Signing keys**: while the cached JWKS is older than its TTL every call takes the full path (which refreshes the
  keys), and a refresh that drops a key id forgets every entry verified with that key. So a key removed from auth's
  JWKS stops working here as soon as the uncached verifier would stop accepting it — no later.
- **Revocation**: access tokens are not revocable by local verification, cached or not. Logout, a revoked session
  or device, a disabled principal or a role change take effect at the next refresh (the access token's lifetime
  bounds the delay, 5-15 minutes); ``IntrospectToken`` answers with revocation for callers that need it at once.
  The cache changes none of that.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from services.kit.config import ServiceConfig
from services.kit.jwks import AuthServiceJwksSource
from services.kit.tokens import JWKS_CACHE_TTL_S, JwksSource, Principal, TokenVerifier

# One JWKS lifetime: the cache adds no delay to a key removal, and a token is re-checked at most every 5 minutes.
VERIFIED_TOKEN_TTL_S = JWKS_CACHE_TTL_S
VERIFIED_TOKENS_MAX = 10_000


class CachedTokenVerifier(TokenVerifier):
    def __init__(
        self,
        source: JwksSource,
        *,
        ttl_s: float = VERIFIED_TOKEN_TTL_S,
        max_entries: int = VERIFIED_TOKENS_MAX,
        clock: Callable[[], float] = time.time,
        **verifier_options: Any,
    ) -> None:
        super().__init__(source, **verifier_options)
        assert ttl_s > 0
        assert max_entries > 0
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        # sha256(token) -> (principal, valid until (wall clock, s), key id it was verified with)
        self._verified: dict[bytes, tuple[Principal, float, str]] = {}

    @property
    def cached_count(self) -> int:
        return len(self._verified)

    async def verify(self, token: str) -> Principal:
        token_hash = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._verified.get(token_hash)
        if cached is not None:
            principal, valid_until, _ = cached
            if now < valid_until and not self.keys_stale():
                return principal
            del self._verified[token_hash]
        principal = await super().verify(token)
        if len(self._verified) >= self._max_entries:
            # Dicts keep insertion order: the first key is the oldest entry.
            del self._verified[next(iter(self._verified))]
        # The header's parse was remembered by the successful verification above, so this is a dict lookup.
        kid = self._key_id_of(token.partition(".")[0])
        self._verified[token_hash] = (principal, min(float(principal.expires_at), now + self._ttl_s), kid)
        return principal

    async def _refresh_locked(self) -> None:
        known_before = self.key_ids()
        await super()._refresh_locked()
        removed = known_before - self.key_ids()
        if removed:
            self._verified = {
                token_hash: entry for token_hash, entry in self._verified.items() if entry[2] not in removed
            }


def build_cached_verifier(config: ServiceConfig) -> CachedTokenVerifier:
    """Like ``service_main.build_verifier``, with the verification cache."""
    return CachedTokenVerifier(
        AuthServiceJwksSource(config.auth_addr),
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
        refresh_min_interval_s=config.jwks_refresh_min_interval_s,
    )
