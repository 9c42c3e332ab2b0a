"""Helpers for tests of any service: a software signing key that mints access tokens.

Used only by tests and benchmarks (auth issues the real tokens). Lives in the kit so no test suite copies it.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.kit.config import ServiceConfig, load_service_config
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.tokens import ALGORITHM, StaticJwksSource, TokenVerifier

TEST_AUDIENCE = "wallet"
TEST_ISSUER = "wallet-auth"
TEST_TOKEN_LIFETIME_S = 300


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class SigningKey:
    """An Ed25519 key with a kid that signs access tokens like auth does."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or f"test-{uuid.uuid4().hex[:8]}"
        self.private_key = Ed25519PrivateKey.generate()

    @property
    def public_jwk(self) -> dict[str, Any]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "x": _b64url(raw),
            "alg": ALGORITHM,
            "use": "sig",
        }

    def mint(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": TEST_ISSUER,
            "aud": TEST_AUDIENCE,
            "sub": str(uuid.uuid4()),
            "org": str(uuid.uuid4()),
            "pty": "member",
            "roles": ["owner"],
            "amr": ["pwd"],
            "acr": "pwd",
            "auth_time": now,
            "iat": now,
            "nbf": now,
            "exp": now + TEST_TOKEN_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        claims = {key: value for key, value in claims.items() if value is not None}
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def static_verifier(*keys: SigningKey) -> TokenVerifier:
    return TokenVerifier(
        StaticJwksSource([key.public_jwk for key in keys]),
        audience=TEST_AUDIENCE,
        issuer=TEST_ISSUER,
        refresh_min_interval_s=0.0,
    )


def config_for_tests(service_name: str, database_url: str, redis_url: str, **overrides: str) -> ServiceConfig:
    """A service configuration for an in-process server on a free port (port 0) against real databases."""
    environ = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
        "DRAIN_GRACE_S": "5",
        "STARTUP_BUDGET_S": "10",
        **overrides,
    }
    return load_service_config(service_name, environ)


async def start_test_server(
    config: ServiceConfig,
    build: Callable[[Runtime], Sequence[Registration]],
    verifier: TokenVerifier,
) -> WalletServer:
    """Starts a real aio server bound to port 0 with real Postgres and Redis; the caller stops it."""
    runtime = Runtime(config=config, verifier=verifier)
    server = WalletServer(runtime, build(runtime))
    await server.start()
    return server
