"""The gateway in front of stand-in services: a real kit server on port 0 (real auth checks, error mapping and
tracing) that serves a test LedgerService (GetAccount, CreateTransfer, ListTransfers echo their input) and a test
AuthService (GetJwks serves the key that signs the tests' tokens, so the gateway's verifier uses the real
``AuthServiceJwksSource``). The gateway runs for real: uvicorn and its gRPC pass-through, both on port 0.

``real_stack`` puts a gateway in front of the real auth, ledger, contacts and risk services instead
(``tests/integration/services_stack.py``), for the flows and the fuzzing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.config import load_gateway_config
from gateway.grpc_passthrough import start_grpc_server
from gateway.runtime import GatewayRuntime, build_runtime
from services.kit.errors import FieldViolation, NotFound, ResourceExhausted, invalid
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.request_context import current_principal
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from tests.integration.services_stack import ServicesStack, start_services, stop_services
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2_grpc, ledger_transfers_pb2

SECRET_IN_EXCEPTION = "db password hunter2"
# A sequence number above 2**53: JSON clients must get it as a string to keep every digit.
BIG_SEQUENCE = 9_007_199_254_740_993


@dataclass
class Seen:
    """What the stand-ins received, for assertions on forwarding."""

    metadata: list[dict[str, str]] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)

    def record(self, request: Any, context: Any) -> None:
        self.requests.append(request)
        self.metadata.append(
            {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        )


class StandInLedger(ledger_service_pb2_grpc.LedgerServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetAccount(
        self, request: ledger_accounts_pb2.GetAccountRequest, context: Any
    ) -> ledger_accounts_pb2.GetAccountResponse:
        self.seen.record(request, context)
        if request.account_id == "missing":
            raise NotFound("account not found")
        if request.account_id == "bad":
            raise invalid([FieldViolation("account_id", "must be a UUID")])
        if request.account_id == "boom":
            raise RuntimeError(SECRET_IN_EXCEPTION)
        if request.account_id == "limited":
            raise ResourceExhausted("slow down", retry_after_s=2.5)
        if request.account_id == "slow":
            await asyncio.sleep(2.0)
        principal = current_principal()
        assert principal is not None
        return ledger_accounts_pb2.GetAccountResponse(
            account=ledger_accounts_pb2.Account(
                account_id=request.account_id,
                customer_id=principal.subject,
                currency="EUR",
                status=ledger_accounts_pb2.ACCOUNT_STATUS_ACTIVE,
            )
        )

    async def CreateTransfer(
        self, request: ledger_transfers_pb2.CreateTransferRequest, context: Any
    ) -> ledger_transfers_pb2.CreateTransferResponse:
        self.seen.record(request, context)
        return ledger_transfers_pb2.CreateTransferResponse(
            transfer=ledger_transfers_pb2.Transfer(
                transfer_id=request.transfer_id,
                debit_account_id=request.debit_account_id,
                credit_account_id=request.credit_account_id,
                amount=request.amount,
                reference=request.reference,
                status=ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
                sequence=BIG_SEQUENCE,
            )
        )

    async def ListTransfers(
        self, request: ledger_transfers_pb2.ListTransfersRequest, context: Any
    ) -> ledger_transfers_pb2.ListTransfersResponse:
        self.seen.record(request, context)
        echo = ledger_transfers_pb2.Transfer(
            transfer_id=str(request.page_size), debit_account_id=request.account_id, status=request.status
        )
        return ledger_transfers_pb2.ListTransfersResponse(transfers=[echo], next_page_token="next")


class StandInAuth(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, key: SigningKey) -> None:
        self.key = key

    async def GetJwks(self, request: auth_keys_pb2.GetJwksRequest, context: Any) -> auth_keys_pb2.GetJwksResponse:
        return auth_keys_pb2.GetJwksResponse(keys=[auth_keys_pb2.Jwk(**self.key.public_jwk)])


@dataclass
class Stack:
    key: SigningKey
    seen: Seen
    upstream: WalletServer
    runtime: GatewayRuntime
    http_url: str
    grpc_port: int

    def token(self, **claims: Any) -> str:
        return self.key.mint(**claims)

    def auth(self, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(**claims)}"}


class HttpServer:
    """uvicorn serving an app on a free port inside the test's event loop."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


def gateway_environ(upstream_addr: str | Mapping[str, str], redis_url: str, **overrides: str) -> dict[str, str]:
    """The gateway's environment: one address for every upstream, or one per service (``{"ledger": addr}``)."""
    if isinstance(upstream_addr, str):
        environ = {f"{name}_ADDR": upstream_addr for name in ("AUTH", "LEDGER", "CONTACTS", "RISK")}
    else:
        environ = {f"{name.upper()}_ADDR": address for name, address in upstream_addr.items()}
    environ.update(REDIS_URL=redis_url, GATEWAY_RATE_LIMIT_KEY="test-rate-limit-key", JWKS_REFRESH_MIN_INTERVAL_S="0")
    environ.update(overrides)
    return environ


@dataclass
class RunningGateway:
    """A real gateway: uvicorn and the gRPC pass-through, both on port 0, in the test's event loop."""

    runtime: GatewayRuntime
    http_url: str
    grpc_port: int
    http_server: HttpServer
    grpc_server: grpc.aio.Server

    async def stop(self) -> None:
        await self.http_server.stop()
        await self.grpc_server.stop(1.0)
        await self.runtime.close()


async def start_gateway(environ: Mapping[str, str]) -> RunningGateway:
    runtime = build_runtime(load_gateway_config(dict(environ)))
    http = HttpServer(create_app(runtime))
    grpc_server, grpc_port = await start_grpc_server(runtime, "127.0.0.1", 0)
    return RunningGateway(runtime, await http.start(), grpc_port, http, grpc_server)


@dataclass
class RealStack:
    """The gateway in front of the real services."""

    services: ServicesStack
    gateway: RunningGateway
    redis_url: str

    @property
    def http_url(self) -> str:
        return self.gateway.http_url

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.gateway.grpc_port}"

    def environ(self, **overrides: str) -> dict[str, str]:
        """The environment of another gateway in front of the same services (own limits, own bucket key)."""
        return gateway_environ(
            self.services.addresses, self.redis_url, GATEWAY_RATE_LIMIT_KEY=os.urandom(8).hex(), **overrides
        )


@pytest.fixture(scope="package")
async def real_stack(
    postgres_server_url: str, redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RealStack]:
    services = await start_services(postgres_server_url, redis_server_url, tmp_path_factory.mktemp("services"))
    try:
        # Limits high enough for the flows; a test of the limits starts a gateway of its own.
        environ = gateway_environ(
            services.addresses,
            redis_server_url,
            GATEWAY_RATE_LIMIT_KEY=os.urandom(8).hex(),
            GATEWAY_RATE_PER_IP_PER_S="100000",
            GATEWAY_BURST_PER_IP="100000",
            GATEWAY_RATE_PER_SUBJECT_PER_S="100000",
            GATEWAY_BURST_PER_SUBJECT="100000",
        )
        gateway = await start_gateway(environ)
        try:
            yield RealStack(services, gateway, redis_server_url)
        finally:
            await gateway.stop()
    finally:
        await stop_services(services, postgres_server_url)


@pytest.fixture(scope="module")
async def stack(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[Stack]:
    key = SigningKey()
    seen = Seen()

    def build(runtime: Runtime) -> Sequence[Registration]:
        return [
            Registration(
                "wallet.ledger.v1.LedgerService",
                ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server,
                StandInLedger(seen),
            ),
            Registration(
                "wallet.auth.v1.AuthService",
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
                StandInAuth(key),
            ),
        ]

    # The stand-ins touch no tables: the server database is enough for the kit's pool.
    upstream = await start_test_server(
        config_for_tests("ledger", postgres_server_url, redis_server_url), build, static_verifier(key)
    )
    environ = gateway_environ(f"127.0.0.1:{upstream.port}", redis_server_url)
    runtime = build_runtime(load_gateway_config(environ))
    http = HttpServer(create_app(runtime))
    grpc_server, grpc_port = await start_grpc_server(runtime, "127.0.0.1", 0)
    try:
        yield Stack(key, seen, upstream, runtime, await http.start(), grpc_port)
    finally:
        await http.stop()
        await grpc_server.stop(1.0)
        await runtime.close()
        await upstream.stop()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=10.0) as client:
        yield client


@pytest.fixture
async def gateway_channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        yield channel
