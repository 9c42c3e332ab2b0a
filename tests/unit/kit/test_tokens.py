import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.errors import Unauthenticated
from services.kit.testing import SigningKey, static_verifier
from services.kit.tokens import StaticJwksSource, TokenVerifier


async def test_valid_token_gives_principal() -> None:
    key = SigningKey()
    token = key.mint(roles=["finance"], org="org-1", sub="member-1", acr="mfa", did="device-1")
    principal = await static_verifier(key).verify(token)
    assert principal.subject == "member-1"
    assert principal.organization_id == "org-1"
    assert principal.roles == frozenset({"finance"})
    assert principal.device_id == "device-1"
    assert principal.has_fresh_step_up(time.time())


async def test_expired_token_refused() -> None:
    key = SigningKey()
    token = key.mint(exp=int(time.time()) - 60)
    with pytest.raises(Unauthenticated, match="expired"):
        await static_verifier(key).verify(token)


async def test_wrong_key_with_same_kid_refused() -> None:
    trusted = SigningKey(kid="k1")
    attacker = SigningKey(kid="k1")
    with pytest.raises(Unauthenticated, match="signature invalid"):
        await static_verifier(trusted).verify(attacker.mint())


async def test_unknown_kid_refused_after_one_refresh() -> None:
    trusted = SigningKey()
    source = StaticJwksSource([trusted.public_jwk])
    verifier = TokenVerifier(source, audience="wallet", issuer="wallet-auth", refresh_min_interval_s=60)
    await verifier.verify(trusted.mint())
    fetches = source.fetch_count
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(SigningKey().mint())
    # Forged key ids must not make the verifier hammer the JWKS source.
    assert source.fetch_count == fetches


async def test_rotated_key_picked_up_on_unknown_kid() -> None:
    old, new = SigningKey(), SigningKey()
    source = StaticJwksSource([old.public_jwk])
    verifier = TokenVerifier(source, audience="wallet", issuer="wallet-auth", refresh_min_interval_s=0)
    await verifier.verify(old.mint())
    source.keys.append(new.public_jwk)
    principal = await verifier.verify(new.mint(sub="after-rotation"))
    assert principal.subject == "after-rotation"


async def test_wrong_audience_refused() -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="another audience"):
        await static_verifier(key).verify(key.mint(aud="someone-else"))


async def test_wrong_issuer_refused() -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="unknown issuer"):
        await static_verifier(key).verify(key.mint(iss="evil"))


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_alg_none_refused() -> None:
    key = SigningKey()
    now = int(time.time())
    claims = {
        "sub": "x",
        "org": "o",
        "iss": "wallet-auth",
        "aud": "wallet",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    token = f"{_b64({'alg': 'none', 'kid': key.kid})}.{_b64(claims)}."
    with pytest.raises(Unauthenticated, match="algorithm not accepted"):
        await static_verifier(key).verify(token)


async def test_hmac_with_public_key_as_secret_refused() -> None:
    key = SigningKey()
    now = int(time.time())
    claims = {
        "sub": "x",
        "org": "o",
        "iss": "wallet-auth",
        "aud": "wallet",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    token = jwt.encode(claims, key.public_jwk["x"], algorithm="HS256", headers={"kid": key.kid})
    with pytest.raises(Unauthenticated, match="algorithm not accepted"):
        await static_verifier(key).verify(token)


async def test_missing_required_claim_refused() -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="invalid"):
        await static_verifier(key).verify(key.mint(jti=None))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer"])
async def test_garbage_refused(garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        await static_verifier(SigningKey()).verify(garbage)


async def test_step_up_needs_mfa_and_recent_auth_time() -> None:
    key = SigningKey()
    verifier = static_verifier(key)
    now = time.time()
    stale = await verifier.verify(key.mint(acr="mfa", auth_time=int(now) - 3600))
    weak = await verifier.verify(key.mint(acr="pwd"))
    assert not stale.has_fresh_step_up(now)
    assert not weak.has_fresh_step_up(now)


def test_ed25519_only_keys_are_loaded() -> None:
    # A sanity check on the test key itself: it is an Ed25519 key.
    assert isinstance(SigningKey().private_key, Ed25519PrivateKey)
