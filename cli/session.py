"""How walletctl reaches the suite: service addresses, operator credentials, deadlines and one-line errors.

Credentials (see docs/operations.md), read once per command:
- ``WALLETCTL_TOKEN``: an access token used as is (e.g. an operator's own, or one minted elsewhere);
- otherwise ``WALLETCTL_CLIENT_ID`` + ``WALLETCTL_CLIENT_SECRET`` of a platform service account (``python -m
  services.auth bootstrap-platform-client --name walletctl --scope ...``), exchanged at auth's ``IssueServiceToken``
  for a token acting for ``--org`` / ``WALLETCTL_ORGANIZATION_ID`` (tenant-scoped commands) or for the platform.
Service accounts need no step-up: the kit lets them act on their scopes alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc

from services.kit.config import DEFAULT_GRPC_PORTS, Env
from services.kit.status import ErrorDetails
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc
from wallet.contacts.v1 import contacts_service_pb2_grpc
from wallet.ledger.v1 import ledger_service_pb2_grpc
from wallet.risk.v1 import risk_service_pb2_grpc

T = TypeVar("T")

CALL_TIMEOUT_S = 10.0
# Codes that mean "the service is not there", as opposed to an answer from it.
UNREACHABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
SERVICES = ("auth", "ledger", "contacts", "risk")


class CliError(Exception):
    """A failure walletctl reports as one line on stderr (exit code 2), never as a stack trace."""


def address_of(service: str, env: Env) -> str:
    offset = env.integer("WALLET_PORT_OFFSET", 0)
    return env.string(f"{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS[service] + offset}")


def describe_rpc_error(service: str, address: str, error: grpc.aio.AioRpcError) -> str:
    if error.code() in UNREACHABLE_CODES:
        return f"{service} at {address} is not reachable ({error.code().name}); is the suite running?"
    details = ErrorDetails.from_rpc_error(error)
    reason = f" [{details.reason}]" if details.reason else ""
    violations = "".join(f"; {v.field}: {v.description}" for v in details.field_violations)
    return f"{service} answered {details.code.name}{reason}: {details.message}{violations}"


@dataclass(frozen=True, slots=True)
class Credentials:
    token: str | None
    client_id: str | None
    client_secret: str | None
    organization_id: str

    @classmethod
    def from_env(cls, env: Env, organization_id: str | None) -> Credentials:
        return cls(
            token=env.optional_string("WALLETCTL_TOKEN"),
            client_id=env.optional_string("WALLETCTL_CLIENT_ID"),
            client_secret=env.optional_string("WALLETCTL_CLIENT_SECRET"),
            organization_id=organization_id or env.string("WALLETCTL_ORGANIZATION_ID", ""),
        )


class Session:
    """Channels to the services (opened on first use) and the operator's bearer token (fetched on first use)."""

    def __init__(self, env: Env, *, organization_id: str | None = None) -> None:
        self._env = env
        self._credentials = Credentials.from_env(env, organization_id)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._token: str | None = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for channel in self._channels.values():
            await channel.close()

    def address(self, service: str) -> str:
        return address_of(service, self._env)

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(self.address(service))
        return self._channels[service]

    @property
    def auth(self) -> auth_service_pb2_grpc.AuthServiceStub:
        return auth_service_pb2_grpc.AuthServiceStub(self.channel("auth"))

    @property
    def ledger(self) -> ledger_service_pb2_grpc.LedgerServiceStub:
        return ledger_service_pb2_grpc.LedgerServiceStub(self.channel("ledger"))

    @property
    def contacts(self) -> contacts_service_pb2_grpc.ContactsServiceStub:
        return contacts_service_pb2_grpc.ContactsServiceStub(self.channel("contacts"))

    @property
    def risk(self) -> risk_service_pb2_grpc.RiskServiceStub:
        return risk_service_pb2_grpc.RiskServiceStub(self.channel("risk"))

    async def call(
        self,
        service: str,
        method: Callable[..., T],
        request: Any,
        *,
        anonymous: bool = False,
    ) -> T:
        """One call with a deadline and the operator's token; failures become a one-line ``CliError``.

        ``method`` is an aio stub's method: the generated stubs type it as returning the response, the aio channel
        makes it return an awaitable call."""
        metadata = () if anonymous else (("authorization", f"Bearer {await self._bearer()}"),)
        try:
            pending: Any = method(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            return cast(T, await pending)
        except grpc.aio.AioRpcError as err:
            raise CliError(describe_rpc_error(service, self.address(service), err)) from None

    async def _bearer(self) -> str:
        if self._token is not None:
            return self._token
        credentials = self._credentials
        if credentials.token is not None:
            self._token = credentials.token
            return self._token
        if credentials.client_id is None or credentials.client_secret is None:
            raise CliError(
                "no operator credentials: set WALLETCTL_TOKEN, or WALLETCTL_CLIENT_ID and WALLETCTL_CLIENT_SECRET "
                "(see docs/operations.md)"
            )
        reply = await self.call(
            "auth",
            self.auth.IssueServiceToken,
            auth_keys_pb2.IssueServiceTokenRequest(
                client_id=credentials.client_id,
                client_secret=credentials.client_secret,
                organization_id=credentials.organization_id,
            ),
            anonymous=True,
        )
        self._token = reply.access_token
        return self._token


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs one command's coroutine; a ``CliError`` escapes for the command wrapper to print."""
    return asyncio.run(coroutine)
