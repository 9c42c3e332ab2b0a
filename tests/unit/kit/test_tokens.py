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
    assert principal.issued_at == jwt.decode(token, options={"verify_signature": False})["iat"]
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


async def test_claims_agree_with_pyjwt() -> None:
    key = SigningKey()
    token = key.mint(roles=["finance", "approver"], scope="a.b.c d.e.f", amr=["pwd", "otp"], acr="mfa", sid="s-1")
    principal = await static_verifier(key).verify(token)
    claims = jwt.decode(token, key.private_key.public_key(), algorithms=["EdDSA"], audience="wallet")
    assert principal.subject == claims["sub"]
    assert principal.roles == frozenset(claims["roles"])
    assert principal.scopes == frozenset(claims["scope"].split())
    assert principal.amr == tuple(claims["amr"])
    assert principal.expires_at == claims["exp"]


async def test_tampered_claims_fail_the_signature() -> None:
    key = SigningKey()
    header, _, signature = key.mint(roles=["customer"]).split(".")
    forged_claims = _b64(
        {
            "sub": "x",
            "org": "o",
            "iss": "wallet-auth",
            "aud": "wallet",
            "iat": 1,
            "exp": 2**40,
            "jti": "j",
            "roles": ["owner"],
        }
    )
    with pytest.raises(Unauthenticated, match="signature invalid"):
        await static_verifier(key).verify(f"{header}.{forged_claims}.{signature}")


async def test_not_yet_valid_refused() -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="not valid yet"):
        await static_verifier(key).verify(key.mint(nbf=int(time.time()) + 3600))


@pytest.mark.parametrize("exp", ["2000000000", True, 2.5e9])
async def test_non_integer_times_refused(exp: object) -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="not an integer"):
        await static_verifier(key).verify(key.mint(exp=exp))


async def test_audience_list_accepted_when_it_contains_ours() -> None:
    key = SigningKey()
    principal = await static_verifier(key).verify(key.mint(aud=["other", "wallet"], sub="multi"))
    assert principal.subject == "multi"


@pytest.mark.parametrize("mangle", [lambda t: t + "=", lambda t: t.replace(".", "..", 1), lambda t: t + "." + t])
async def test_non_compact_forms_refused(mangle: object) -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="malformed"):
        await static_verifier(key).verify(mangle(key.mint()))  # type: ignore[operator]


async def test_oversized_token_refused_before_parsing() -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        await static_verifier(SigningKey()).verify("a" * 10_000 + ".b.c")


async def test_a_remembered_header_still_needs_a_valid_signature() -> None:
    trusted = SigningKey(kid="k1")
    attacker = SigningKey(kid="k1")
    verifier = static_verifier(trusted)
    await verifier.verify(trusted.mint())
    forged = attacker.mint()
    # Same kid and alg, so byte-identical header: its parse is remembered, the signature check is not skipped.
    assert forged.split(".")[0] == trusted.mint().split(".")[0]
    with pytest.raises(Unauthenticated, match="signature invalid"):
        await verifier.verify(forged)


async def test_an_operation_bound_step_up_counts_only_for_its_operation() -> None:
    key = SigningKey()
    now = int(time.time())
    method = "/wallet.ledger.v1.LedgerService/ApproveTransfer"
    token = key.mint(acr="mfa", auth_time=now, bound_method=method, bound_resource_id="transfer-a")
    principal = await static_verifier(key).verify(token)
    assert principal.has_fresh_step_up_for(method, "transfer-a", now)
    assert not principal.has_fresh_step_up_for(method, "transfer-b", now)
    assert not principal.has_fresh_step_up_for("/wallet.ledger.v1.LedgerService/RevealCard", "transfer-a", now)
    assert not principal.has_fresh_step_up(now)  # fails closed where the guard does not name its method
    general = await static_verifier(key).verify(key.mint(acr="mfa", auth_time=now))
    assert general.has_fresh_step_up_for(method, "anything", now)


async def test_half_an_operation_binding_is_refused() -> None:
    key = SigningKey()
    with pytest.raises(Unauthenticated, match="half an operation binding"):
        await static_verifier(key).verify(key.mint(bound_method="/wallet.ledger.v1.LedgerService/ApproveTransfer"))
