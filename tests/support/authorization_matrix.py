"""The authorization matrix of one running service, generated from the method options (issue 12).

Every declared method is called with an empty request under every role of DESIGN.md §5, as a service account
with and without the method's permission as a scope, and with a missing, expired, forged and ``alg=none`` token.
The expectation comes from the method's ``(wallet.common.v1.policy)`` option and the role table: a role that does
not grant the permission gets ``PERMISSION_DENIED``; one that grants it gets past authorization (the empty request
then fails validation, is not found, or succeeds — anything but an authentication or authorization refusal);
``step_up`` methods refuse a human without a fresh step-up with ``STEP_UP_REQUIRED``. No call may end in
``INTERNAL`` or ``UNKNOWN``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.kit.policy import PLATFORM_ONLY_PERMISSIONS, ROLE_PERMISSIONS, role_grants
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER
from tests.support.raw_calls import DeclaredMethod, Metadata, Outcome, bearer, call_raw, declared_methods

Claims = dict[str, Any]
Minter = Callable[[Claims], Awaitable[str]]

TOKEN_LIFETIME_S = 300
REFUSALS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
NEVER = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
STEP_UP_REASON = "STEP_UP_REQUIRED"


def claims_for(organization_id: str, role: str | None, *, step_up: bool = False, scope: str = "") -> Claims:
    """Claims like auth issues them: a member (or customer) with one role, or a service account with a scope."""
    now = int(time.time())
    kind = "service" if role is None else ("customer" if role == "customer" else "member")
    return {
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": str(uuid.uuid4()),
        "org": organization_id,
        "pty": kind,
        "roles": [] if role is None else [role],
        "scope": scope,
        "amr": ["pwd", "otp"] if step_up else ["pwd"],
        "acr": "mfa" if step_up else "pwd",
        "auth_time": now,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_S,
        "jti": str(uuid.uuid4()),
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged(token: str) -> str:
    """The same header and claims under a signature that is not the key's (last signature byte changed)."""
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[-1] ^= 0x01
    return f"{header}.{payload}.{_b64(bytes(raw))}"


def unsigned(token: str) -> str:
    """The same claims with ``alg=none`` and no signature."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    header["alg"] = "none"
    payload = token.split(".")[1]
    return f"{_b64(json.dumps(header).encode())}.{payload}."


class Matrix:
    def __init__(self, channel: grpc.aio.Channel, mint: Minter, organization_id: str | None = None) -> None:
        self._channel = channel
        self._mint = mint
        self._org = organization_id or str(uuid.uuid4())
        self.failures: list[str] = []
        self.calls = 0

    async def _call(self, method: DeclaredMethod, metadata: Metadata) -> Outcome:
        self.calls += 1
        outcome = await call_raw(self._channel, method, b"", metadata)
        if outcome.code in NEVER:
            self._fail(method, "any caller", "never INTERNAL/UNKNOWN", outcome)
        return outcome

    def _fail(self, method: DeclaredMethod, who: str, expected: str, got: Outcome) -> None:
        self.failures.append(f"{method.full_method} as {who}: expected {expected}, got {got}")

    async def _token(self, role: str | None, *, step_up: bool = False, scope: str = "", **extra: Any) -> Metadata:
        claims = claims_for(self._org, role, step_up=step_up, scope=scope)
        claims.update(extra)
        return bearer(await self._mint(claims))

    async def check_service(self, service_full_name: str) -> None:
        for method in declared_methods(service_full_name):
            await self.check_method(method)

    async def check_method(self, method: DeclaredMethod) -> None:
        policy = method.policy
        if policy is None:
            self.failures.append(f"{method.full_method}: no (wallet.common.v1.policy) option")
            return
        if policy.anonymous:
            # Anonymous methods (login, sign-up, JWKS) must not ask for a token; their own checks still apply.
            outcome = await self._call(method, ())
            if outcome.code == grpc.StatusCode.PERMISSION_DENIED:
                self._fail(method, "nobody", "no authorization refusal", outcome)
            return
        await self._check_bad_tokens(method)
        for role in sorted(ROLE_PERMISSIONS):
            await self._check_role(method, role)
        await self._check_service_account(method)

    async def _check_bad_tokens(self, method: DeclaredMethod) -> None:
        valid = await self._mint(claims_for(self._org, "owner", step_up=True))
        expired_claims = claims_for(self._org, "owner", step_up=True)
        expired_claims.update(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000, nbf=int(time.time()) - 4000)
        cases: dict[str, Metadata] = {
            "no token": (),
            "expired token": bearer(await self._mint(expired_claims)),
            "forged token": bearer(forged(valid)),
            "alg=none token": bearer(unsigned(valid)),
            "other audience": bearer(await self._mint({**claims_for(self._org, "owner", step_up=True), "aud": "x"})),
        }
        for who, metadata in cases.items():
            outcome = await self._call(method, metadata)
            if outcome.code != grpc.StatusCode.UNAUTHENTICATED:
                self._fail(method, who, "UNAUTHENTICATED", outcome)

    async def _check_role(self, method: DeclaredMethod, role: str) -> None:
        policy = method.policy
        assert policy is not None
        granted = role_grants(role, policy.permission)
        outcome = await self._call(method, await self._token(role, step_up=policy.step_up))
        if not granted:
            if outcome.code != grpc.StatusCode.PERMISSION_DENIED:
                self._fail(method, role, f"PERMISSION_DENIED ({policy.permission} not granted)", outcome)
            return
        if outcome.code in REFUSALS or outcome.reason == STEP_UP_REASON:
            self._fail(method, role, f"past authorization ({policy.permission} granted)", outcome)
        if policy.step_up:
            without = await self._call(method, await self._token(role, step_up=False))
            if without.code != grpc.StatusCode.FAILED_PRECONDITION or without.reason != STEP_UP_REASON:
                self._fail(method, f"{role} without step-up", f"FAILED_PRECONDITION/{STEP_UP_REASON}", without)

    async def _check_service_account(self, method: DeclaredMethod) -> None:
        policy = method.policy
        assert policy is not None
        scoped = await self._call(method, await self._token(None, scope=policy.permission))
        if scoped.code in REFUSALS or scoped.reason == STEP_UP_REASON:
            self._fail(method, f"service account with scope {policy.permission}", "past authorization", scoped)
        others = " ".join(sorted(PLATFORM_ONLY_PERMISSIONS - {policy.permission}))
        unscoped = await self._call(method, await self._token(None, scope=others))
        if unscoped.code != grpc.StatusCode.PERMISSION_DENIED:
            self._fail(method, "service account without the scope", "PERMISSION_DENIED", unscoped)

    def report(self) -> str:
        return f"{len(self.failures)} of {self.calls} calls broke the matrix:\n" + "\n".join(self.failures)
