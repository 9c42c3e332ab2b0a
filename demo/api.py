"""The two ways the demo talks to the suite: the gateway's HTTP/JSON API, as a mobile app would, and gRPC straight to
a service for the in-cluster (non-public) methods an operator or back office would call."""

from __future__ import annotations

import time
import uuid
from typing import Any, TypeVar, cast

import grpc
import httpx
import pyotp

from services.kit.status import ErrorDetails
from wallet.auth.v1 import auth_service_pb2_grpc
from wallet.ledger.v1 import ledger_service_pb2_grpc
from wallet.risk.v1 import risk_service_pb2_grpc

T = TypeVar("T")
CALL_TIMEOUT_S = 15.0
TOTP_STEP_S = 30


class DemoError(Exception):
    """A step of the walk-through failed; the message names the call and the platform's answer."""


def new_id() -> str:
    return str(uuid.uuid4())


class TotpCodes:
    """TOTP codes from an authenticator app: each for a later 30-second step than the one before (auth refuses a step
    already used and accepts one step either side of now)."""

    def __init__(self, secret: str) -> None:
        self._totp = pyotp.TOTP(secret)
        self._last_step = -1

    def next(self) -> str:
        now_step = int(time.time() // TOTP_STEP_S)
        for step in (now_step - 1, now_step, now_step + 1):
            if step > self._last_step:
                self._last_step = step
                return self._totp.at(step * TOTP_STEP_S)
        raise DemoError("no unused TOTP step left in the drift window")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Gateway:
    """The gateway's HTTP/JSON API. Every answer other than 200 becomes a ``DemoError`` with its problem details."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=CALL_TIMEOUT_S)
        self.last_traceparent = ""

    async def close(self) -> None:
        await self._http.aclose()

    async def post(
        self, path: str, body: dict[str, Any], *, token: str = "", key: str | None = None
    ) -> dict[str, Any]:
        headers = bearer(token) if token else {}
        if key is not None:
            headers["idempotency-key"] = key
        return self._checked("POST", path, await self._http.post(path, json=body, headers=headers))

    async def get(self, path: str, *, token: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
        return self._checked("GET", path, await self._http.get(path, params=params, headers=bearer(token)))

    def _checked(self, verb: str, path: str, response: httpx.Response) -> dict[str, Any]:
        self.last_traceparent = response.headers.get("traceparent", "")
        if response.status_code != httpx.codes.OK:
            raise DemoError(f"{verb} {path} answered {response.status_code}: {response.text[:500]}")
        return cast(dict[str, Any], response.json())


class Services:
    """gRPC channels straight to the services (in-cluster methods the gateway does not expose)."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self._addresses = addresses
        self._channels = {name: grpc.aio.insecure_channel(address) for name, address in addresses.items()}
        self.auth = auth_service_pb2_grpc.AuthServiceStub(self._channels["auth"])
        self.ledger = ledger_service_pb2_grpc.LedgerServiceStub(self._channels["ledger"])
        self.risk = risk_service_pb2_grpc.RiskServiceStub(self._channels["risk"])

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def call(self, service: str, method: Any, request: Any, token: str) -> Any:
        """One call with the caller's token and a deadline; a failure becomes a ``DemoError`` naming the reason."""
        try:
            pending: Any = method(request, metadata=(("authorization", f"Bearer {token}"),), timeout=CALL_TIMEOUT_S)
            return await pending
        except grpc.aio.AioRpcError as err:
            details = ErrorDetails.from_rpc_error(err)
            raise DemoError(
                f"{service} at {self._addresses[service]} answered {details.code.name} [{details.reason}]: "
                f"{details.message}"
            ) from None
