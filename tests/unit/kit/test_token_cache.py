"""The verification cache: a repeated token skips the signature check, never outlives exp or the TTL, stays
bounded, and never keeps a failure."""

from __future__ import annotations

import time

import pytest

from services.kit.errors import Unauthenticated
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER, SigningKey
from services.kit.token_cache import CachedTokenVerifier
from services.kit.tokens import Principal, StaticJwksSource


class CountingVerifier(CachedTokenVerifier):
    checks = 0

    def verify_with_key(self, token: str, key: object) -> Principal:  # type: ignore[override]
        self.checks += 1
        return super().verify_with_key(token, key)  # type: ignore[arg-type]


def _verifier(key: SigningKey, now: list[float], **options: object) -> CountingVerifier:
    return CountingVerifier(
        StaticJwksSource([key.public_jwk]),
        audience=TEST_AUDIENCE,
        issuer=TEST_ISSUER,
        refresh_min_interval_s=0.0,
        clock=lambda: now[0],
        **options,  # type: ignore[arg-type]
    )


async def test_repeated_token_is_checked_once_until_the_ttl() -> None:
    key, now = SigningKey(), [time.time()]
    verifier = _verifier(key, now, ttl_s=30.0)
    token = key.mint()
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert verifier.checks == 1
    now[0] += 31
    await verifier.verify(token)
    assert verifier.checks == 2


async def test_cache_never_outlives_the_token() -> None:
    key, now = SigningKey(), [time.time()]
    verifier = _verifier(key, now, ttl_s=3600.0)
    token = key.mint(exp=int(now[0]) + 10)
    await verifier.verify(token)
    now[0] += 11
    # Past exp the cache is skipped and the real check runs (it still allows the kit's clock-skew leeway).
    await verifier.verify(token)
    assert verifier.checks == 2


async def test_failures_are_not_kept_and_the_table_is_bounded() -> None:
    key, other, now = SigningKey(), SigningKey(), [time.time()]
    verifier = _verifier(key, now, max_entries=2)
    forged = other.mint()
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(forged)
    tokens = [key.mint() for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[0])
    assert verifier.checks == 4  # the oldest entry was evicted, so it was checked again
