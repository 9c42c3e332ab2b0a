"""The JWKS source every service uses in production: auth's ``GetJwks`` over gRPC.

Fetched rarely (on start-up, on an unknown key id, and when the cache ages out — see ``tokens.TokenVerifier``), so
one lazily created channel with a short deadline is enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.kit.channels import ServiceChannel

JWKS_DEADLINE_S = 2.0


class AuthServiceJwksSource:
    def __init__(self, auth_addr: str) -> None:
        self._auth = ServiceChannel(auth_addr)

    async def fetch(self) -> Sequence[dict[str, Any]]:
        # Imported here so the kit does not depend on the auth contract at import time.
        from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc

        stub = auth_service_pb2_grpc.AuthServiceStub(self._auth.get())
        reply = await stub.GetJwks(auth_keys_pb2.GetJwksRequest(), timeout=JWKS_DEADLINE_S)
        return [
            {"kty": key.kty, "crv": key.crv, "x": key.x, "kid": key.kid, "alg": key.alg, "use": key.use}
            for key in reply.keys
        ]

    async def close(self) -> None:
        await self._auth.close()
