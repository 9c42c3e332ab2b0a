"""Local verification of access tokens: EdDSA (Ed25519) JWTs checked against a cached JWKS.

The check is written out here (split, one strict base64url decode per part, Ed25519 verify by ``cryptography``,
then the claim rules) rather than delegated to PyJWT, because it runs on every RPC of every service and PyJWT's
generic path (parsing twice, per-character Python checks) costs more than the signature itself. PyJWT still mints the
test tokens, and the unit tests cross-check both directions.

No RPC per call: keys come from a ``JwksSource`` (the auth service's ``GetJwks`` in production, a static set in
tests), cached by key id and re-fetched when an unknown ``kid`` appears (at most once per
``refresh_min_interval_s``, so forged key ids cannot make us hammer auth) or when the cache is older than
``cache_ttl_s``. Only ``EdDSA`` is accepted: ``alg=none``, HMAC and RSA tokens are refused before any key lookup.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.kit.errors import Unauthenticated

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
CLOCK_SKEW_LEEWAY_S = 5
STEP_UP_MAX_AGE_S = 300
JWKS_CACHE_TTL_S = 300.0
REQUIRED_CLAIMS = ("sub", "org", "exp", "iat", "iss", "aud", "jti")
# A compact JWS is three base64url parts; anything else (padding, other characters, more dots) is malformed.
_COMPACT_JWS = re.compile(r"^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$")
TOKEN_LENGTH_MAX = 8_192
ED25519_SIGNATURE_BYTES = 64
ED25519_PUBLIC_KEY_BYTES = 32
# Distinct token headers remembered (one per signing key in practice: a few during a rotation).
VERIFIED_HEADERS_MAX = 32

PRINCIPAL_KIND_MEMBER = "member"
PRINCIPAL_KIND_CUSTOMER = "customer"
PRINCIPAL_KIND_SERVICE = "service"
PRINCIPAL_KINDS = frozenset({PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_SERVICE})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says."""

    subject: str
    organization_id: str
    kind: str
    roles: frozenset[str]
    scopes: frozenset[str]
    amr: tuple[str, ...]
    acr: str
    auth_time: int
    token_id: str
    expires_at: int
    device_id: str | None = None
    # `sid`: the session (refresh-token family) the token belongs to; absent on service tokens.
    session_id: str | None = None
    # `iat`: when the token was issued (0 only for principals built by hand in tests).
    issued_at: int = 0
    # `bound_method` / `bound_resource_id`: a device step-up approves one operation only (auth issue 13).
    bound_method: str | None = None
    bound_resource_id: str | None = None
    # `bound_currency` / `bound_amount_minor`: the amount the user saw and approved on the device, when any.
    bound_currency: str | None = None
    bound_amount_minor: int | None = None

    def has_fresh_step_up(
        self, now_s: float, max_age_s: int = STEP_UP_MAX_AGE_S, *, method: str | None = None
    ) -> bool:
        """A recent MFA. A token bound to one operation counts only for its method, so a caller that does not
        say which method it guards (``method=None``) never accepts one: bound tokens fail closed."""
        if self.bound_method is not None and method != self.bound_method:
            return False
        return self.acr == "mfa" and 0 <= now_s - self.auth_time <= max_age_s

    def has_fresh_step_up_for(
        self,
        method: str,
        resource_id: str,
        now_s: float,
        max_age_s: int = STEP_UP_MAX_AGE_S,
        *,
        amount: tuple[str, int] | None = None,
    ) -> bool:
        """What a handler checks before acting on ``resource_id`` (e.g. the transfer being approved): a general
        step-up, or one bound to exactly this method and resource — and, when the caller passes the operation's
        ``amount`` as ``(currency, minor units)`` and the token was bound to an amount, to exactly that amount."""
        if self.bound_resource_id is not None and resource_id != self.bound_resource_id:
            return False
        bound_amount = (self.bound_currency, self.bound_amount_minor)
        if amount is not None and self.bound_amount_minor is not None and amount != bound_amount:
            return False
        return self.has_fresh_step_up(now_s, max_age_s, method=method)


class JwksSource(Protocol):
    async def fetch(self) -> Sequence[dict[str, Any]]:
        """Returns the current public JWKs (``{"kty": "OKP", "crv": "Ed25519", "kid": ..., "x": ...}``)."""
        ...


class StaticJwksSource:
    """A fixed key set: tests, and tools that verify offline."""

    def __init__(self, keys: Sequence[dict[str, Any]]) -> None:
        self.keys = list(keys)
        self.fetch_count = 0

    async def fetch(self) -> Sequence[dict[str, Any]]:
        self.fetch_count += 1
        return self.keys


def _unauthenticated(message: str) -> Unauthenticated:
    return Unauthenticated(message)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(part))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _unauthenticated(f"malformed access token {what}") from None
    if not isinstance(value, dict):
        raise _unauthenticated(f"malformed access token {what}")
    return value


def public_key_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey | None:
    """The Ed25519 key of an OKP JWK, or None when it is not one."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        return None
    try:
        raw = _b64url_decode(jwk["x"])
    except (binascii.Error, ValueError):
        return None
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


class TokenVerifier:
    def __init__(
        self,
        source: JwksSource,
        *,
        audience: str,
        issuer: str,
        refresh_min_interval_s: float = 5.0,
        cache_ttl_s: float = JWKS_CACHE_TTL_S,
    ) -> None:
        self._source = source
        self._audience = audience
        self._issuer = issuer
        self._refresh_min_interval_s = refresh_min_interval_s
        self._cache_ttl_s = cache_ttl_s
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = float("-inf")
        self._refresh_lock = asyncio.Lock()
        self._verified_header_kids: dict[str, str] = {}

    async def refresh(self) -> None:
        async with self._refresh_lock:
            await self._refresh_locked()

    async def _refresh_locked(self) -> None:
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in await self._source.fetch():
            kid = jwk.get("kid")
            public_key = public_key_from_jwk(jwk)
            if not isinstance(kid, str) or public_key is None:
                log.warning("ignoring a JWK that is not an Ed25519 key with a kid")
                continue
            keys[kid] = public_key
        self._keys = keys
        self._fetched_at = time.monotonic()

    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def keys_stale(self) -> bool:
        """Whether the cached JWKS is older than its TTL (the next verification re-fetches it)."""
        return time.monotonic() - self._fetched_at > self._cache_ttl_s

    async def key_for(self, kid: str) -> Ed25519PublicKey:
        now = time.monotonic()
        stale = now - self._fetched_at > self._cache_ttl_s
        key = self._keys.get(kid)
        if key is not None and not stale:
            return key
        async with self._refresh_lock:
            # Another call may have refreshed while we waited; and forged key ids must not hammer the source.
            now = time.monotonic()
            still_missing = self._keys.get(kid) is None or now - self._fetched_at > self._cache_ttl_s
            if still_missing and now - self._fetched_at >= self._refresh_min_interval_s:
                try:
                    await self._refresh_locked()
                except Exception:
                    # Keep serving from the cached keys: auth being briefly down must not log everyone out.
                    log.warning("JWKS refresh failed; using cached keys", exc_info=True)
        key = self._keys.get(kid)
        if key is None:
            raise _unauthenticated("access token signed by an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        parts = _split(token)
        key = await self.key_for(self._key_id_of(parts[0]))
        return self._verify_parts(parts, key)

    def verify_with_key(self, token: str, key: Ed25519PublicKey) -> Principal:
        return self._verify_parts(_split(token), key)

    def _key_id_of(self, header_part: str) -> str:
        # Every token signed by one key carries the same header bytes, so its parse is remembered (only for headers
        # of tokens that verified, so forged headers cannot grow the table).
        kid = self._verified_header_kids.get(header_part)
        if kid is not None:
            return kid
        header = _json_object(header_part, "header")
        if header.get("alg") != ALGORITHM:
            raise _unauthenticated("access token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid == "":
            raise _unauthenticated("access token has no key id")
        return kid

    def _verify_parts(self, parts: tuple[str, str, str], key: Ed25519PublicKey) -> Principal:
        header_part, claims_part, signature_part = parts
        try:
            signature = _b64url_decode(signature_part)
        except (binascii.Error, ValueError):
            raise _unauthenticated("malformed access token signature") from None
        if len(signature) != ED25519_SIGNATURE_BYTES:
            raise _unauthenticated("access token signature invalid")
        try:
            key.verify(signature, f"{header_part}.{claims_part}".encode("ascii"))
        except InvalidSignature:
            raise _unauthenticated("access token signature invalid") from None
        claims = _json_object(claims_part, "claims")
        self._check_claims(claims, time.time())
        principal = principal_from_claims(claims)
        if header_part not in self._verified_header_kids:
            self._remember_header(header_part)
        return principal

    def _remember_header(self, header_part: str) -> None:
        header = _json_object(header_part, "header")
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or kid == "":
            return  # verify_with_key was given a key directly; such a header is never looked up by verify
        if len(self._verified_header_kids) >= VERIFIED_HEADERS_MAX:
            self._verified_header_kids.clear()
        self._verified_header_kids[header_part] = kid

    def _check_claims(self, claims: dict[str, Any], now_s: float) -> None:
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise _unauthenticated(f"access token invalid: no {name} claim")
        for name in ("exp", "iat", "nbf", "auth_time"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _unauthenticated(f"access token invalid: {name} is not an integer")
        if claims["exp"] <= now_s - CLOCK_SKEW_LEEWAY_S:
            raise _unauthenticated("access token expired")
        not_before = claims.get("nbf", claims["iat"])
        if not_before > now_s + CLOCK_SKEW_LEEWAY_S:
            raise _unauthenticated("access token not valid yet")
        if claims["iss"] != self._issuer:
            raise _unauthenticated("access token from an unknown issuer")
        audience = claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise _unauthenticated("access token is for another audience")


def _split(token: str) -> tuple[str, str, str]:
    if len(token) > TOKEN_LENGTH_MAX:
        raise _unauthenticated("malformed access token")
    match = _COMPACT_JWS.match(token)
    if match is None:
        raise _unauthenticated("malformed access token")
    return match.group(1), match.group(2), match.group(3)


def _str_list(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    kind = claims.get("pty", PRINCIPAL_KIND_MEMBER)
    if kind not in PRINCIPAL_KINDS:
        raise _unauthenticated("access token has an unknown principal kind")
    scope = claims.get("scope", "")
    auth_time = claims.get("auth_time", claims["iat"])
    if not isinstance(auth_time, int):
        raise _unauthenticated("access token auth_time invalid")
    device_id = claims.get("did")
    session_id = claims.get("sid")
    if ("bound_method" in claims) != ("bound_resource_id" in claims):
        raise _unauthenticated("access token has half an operation binding")
    if ("bound_currency" in claims) != ("bound_amount_minor" in claims) or (
        "bound_amount_minor" in claims and "bound_method" not in claims
    ):
        raise _unauthenticated("access token has half an amount binding")
    bound_amount = claims.get("bound_amount_minor")
    if bound_amount is not None and (not isinstance(bound_amount, int) or isinstance(bound_amount, bool)):
        raise _unauthenticated("access token bound amount invalid")
    return Principal(
        subject=str(claims["sub"]),
        organization_id=str(claims["org"]),
        kind=kind,
        roles=frozenset(_str_list(claims.get("roles"))),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        amr=_str_list(claims.get("amr")),
        acr=str(claims.get("acr", "")),
        auth_time=auth_time,
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        device_id=device_id if isinstance(device_id, str) else None,
        session_id=session_id if isinstance(session_id, str) else None,
        issued_at=claims["iat"],
        bound_method=_optional_str(claims.get("bound_method")),
        bound_resource_id=_optional_str(claims.get("bound_resource_id")),
        bound_currency=_optional_str(claims.get("bound_currency")),
        bound_amount_minor=bound_amount,
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
