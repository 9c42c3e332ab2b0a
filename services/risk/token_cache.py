"""A token verifier that remembers what it verified, for Assess's latency budget.

The ledger calls Assess with the same platform service-account token for minutes at a time; checking its Ed25519
signature and claims on every call costs more than the rest of the hot path. Verified tokens are kept (by their
exact text, in process memory only) until they expire and at most ``VERIFIED_TOKEN_TTL_S`` — so a key removed from
the JWKS stops being honoured within that bound — in a bounded LRU.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from services.kit.tokens import Principal, TokenVerifier

VERIFIED_TOKEN_TTL_S = 60.0
VERIFIED_TOKENS_MAX = 10_000


class CachingTokenVerifier(TokenVerifier):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        verified = self._verified
        now_s = time.time()
        hit = verified.get(token)
        if hit is not None and hit[1] > now_s:
            verified.move_to_end(token)
            return hit[0]
        principal = await super().verify(token)
        verified[token] = (principal, min(float(principal.expires_at), now_s + VERIFIED_TOKEN_TTL_S))
        verified.move_to_end(token)
        while len(verified) > VERIFIED_TOKENS_MAX:
            verified.popitem(last=False)
        return principal
