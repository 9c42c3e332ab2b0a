"""The verification cache: a repeated token skips the signature check, never outlives exp or the TTL, stays
bounded, and never keeps a failure."""

from __future__ import annotations

import hashlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.kit.errors import Unauthenticated
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER, SigningKey
from services.kit.token_cache import CachedTokenVerifier
from services.kit.tokens import JWKS_CACHE_TTL_S, Principal, StaticJwksSource


class CountingVerifier(CachedTokenVerifier):
    checks = 0

    def _verify_parts(self, parts: tuple[str, str, str], key: Ed25519PublicKey) -> Principal:
        self.checks += 1
        return super()._verify_parts(parts, key)


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


async def test_a_key_dropped_from_the_jwks_forgets_its_tokens() -> None:
    old, new, now = SigningKey(), SigningKey(), [time.time()]
    source = StaticJwksSource([old.public_jwk])
    verifier = CountingVerifier(
        source, audience=TEST_AUDIENCE, issuer=TEST_ISSUER, refresh_min_interval_s=0.0, clock=lambda: now[0]
    )
    old_token, kept_token = old.mint(), old.mint()
    await verifier.verify(old_token)
    source.keys = [new.public_jwk]  # auth retired the old key (or it was pulled after a compromise)
    await verifier.verify(new.mint())  # an unknown kid makes the verifier re-fetch the JWKS
    assert verifier.cached_count == 1
    with pytest.raises(Unauthenticated):
        await verifier.verify(old_token)
    with pytest.raises(Unauthenticated):
        await verifier.verify(kept_token)


async def test_a_stale_jwks_sends_every_call_through_the_full_check() -> None:
    key, now = SigningKey(), [time.time()]
    verifier = _verifier(key, now, cache_ttl_s=0.0)
    token = key.mint()
    for _ in range(3):
        await verifier.verify(token)
    assert verifier.checks == 3


async def test_the_table_is_keyed_by_a_hash_never_the_token() -> None:
    key, now = SigningKey(), [time.time()]
    verifier = _verifier(key, now)
    token = key.mint()
    await verifier.verify(token)
    stored = list(verifier._verified)  # what the table holds is the property under test
    assert stored == [hashlib.sha256(token.encode()).digest()]
    assert all(token.encode() not in entry for entry in stored)


async def test_default_ttl_is_one_jwks_lifetime_and_never_past_exp() -> None:
    key, now = SigningKey(), [time.time()]
    verifier = _verifier(key, now)
    token = key.mint(exp=int(now[0]) + 900)
    await verifier.verify(token)
    now[0] += JWKS_CACHE_TTL_S - 1
    await verifier.verify(token)
    assert verifier.checks == 1
    now[0] += 2
    await verifier.verify(token)
    assert verifier.checks == 2
