"""What the gateway checks before it forwards a call, for HTTP and gRPC alike: the bearer token (verified locally
with the kit's ``TokenVerifier``), the rate limits, and the deadline the client asked for.

The gateway only decides whether a call may pass the edge; the token is forwarded unchanged and the owning service
authorizes the call itself (permission, step-up, tenant) from the same method policy.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass

from gateway.rate_limit import RateLimiter
from services.kit.errors import FieldViolation, Unauthenticated, invalid
from services.kit.policy import MethodPolicy
from services.kit.tokens import Principal, TokenVerifier

# gRPC's wire format for timeouts: up to 8 digits and a unit (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_GRPC_TIMEOUT_UNIT_S = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# `Request-Timeout: <seconds>` (decimal seconds, as in the IETF draft of that header).
_SECONDS = re.compile(r"^\d{1,6}(\.\d{1,6})?$")
# Client-supplied request ids are echoed and logged, so they keep the kit's safe shape.
_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Admitted:
    principal: Principal | None
    timeout_s: float


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.strip() == "":
        return None
    return token.strip()


def request_id_from(supplied: str | None) -> str:
    if supplied is not None and _REQUEST_ID_SHAPE.match(supplied):
        return supplied
    return str(uuid.uuid4())


def client_timeout_s(grpc_timeout: str | None, request_timeout: str | None) -> float | None:
    """The deadline a client asked for, in seconds, or None; malformed values are INVALID_ARGUMENT."""
    if grpc_timeout is not None:
        found = _GRPC_TIMEOUT.match(grpc_timeout.strip())
        if found is None:
            raise invalid([FieldViolation("grpc-timeout", "expected digits and a unit (H, M, S, m, u, n)")])
        return int(found.group(1)) * _GRPC_TIMEOUT_UNIT_S[found.group(2)]
    if request_timeout is not None:
        if not _SECONDS.match(request_timeout.strip()):
            raise invalid([FieldViolation("Request-Timeout", "expected a number of seconds")])
        return float(request_timeout)
    return None


class EdgeGuard:
    def __init__(
        self,
        verifier: TokenVerifier,
        limiter: RateLimiter,
        *,
        default_deadline_s: float,
        max_deadline_s: float,
    ) -> None:
        self._verifier = verifier
        self._limiter = limiter
        self._default_deadline_s = default_deadline_s
        self._max_deadline_s = max_deadline_s

    def deadline_s(self, requested_s: float | None) -> float:
        """The client's deadline, capped; a zero or tiny one still gives the call a millisecond to fail properly."""
        if requested_s is None:
            return self._default_deadline_s
        return max(1e-3, min(requested_s, self._max_deadline_s))

    async def admit(
        self,
        policy: MethodPolicy,
        *,
        authorization: str | None,
        client_ip: str | None,
        requested_timeout_s: float | None,
    ) -> Admitted:
        """Verifies the token (unless the method is anonymous) and consumes from the rate limits; raises a
        ``WalletError`` (UNAUTHENTICATED, RESOURCE_EXHAUSTED) to refuse the call."""
        principal: Principal | None = None
        if not policy.anonymous:
            token = bearer_token(authorization)
            if token is None:
                raise Unauthenticated("missing bearer access token")
            principal = await self._verifier.verify(token)
        await self._limiter.check(subject=principal.subject if principal else None, client_ip=client_ip)
        timeout_s = self.deadline_s(requested_timeout_s)
        assert math.isfinite(timeout_s)
        return Admitted(principal=principal, timeout_s=timeout_s)
