"""The kit's server bootstrap and interceptor against a real aio server on port 0 with real Postgres and Redis.

A test servicer stands in for the ledger's GetAccount so the interceptor's behaviour can be driven from the request.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.errors import FieldViolation, invalid
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.request_context import current_principal
from services.kit.status import INTERNAL_MESSAGE, ErrorDetails
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2, ledger_service_pb2_grpc

pytestmark = pytest.mark.integration

LEDGER = "wallet.ledger.v1.LedgerService"
CARD_NUMBER = "4111111111111111"


class ProbeLedger(ledger_service_pb2_grpc.LedgerServiceServicer):
    """GetAccount behaves according to the requested id; every other RPC stays unbuilt."""

    async def GetAccount(
        self, request: ledger_accounts_pb2.GetAccountRequest, context: Any
    ) -> ledger_accounts_pb2.GetAccountResponse:
        if request.account_id == "boom":
            raise RuntimeError(f"database said no about card {CARD_NUMBER}")
        if request.account_id == "bad":
            raise invalid([FieldViolation("account_id", "must be a UUID")])
        if request.account_id == "slow":
            await asyncio.sleep(1.0)
        principal = current_principal()
        assert principal is not None
        return ledger_accounts_pb2.GetAccountResponse(
            account=ledger_accounts_pb2.Account(account_id=request.account_id, customer_id=principal.subject)
        )


def _build(runtime: Runtime) -> Sequence[Registration]:
    return [Registration(LEDGER, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, ProbeLedger())]


@pytest.fixture
async def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
async def server(database_url: str, redis_server_url: str, key: SigningKey) -> AsyncIterator[WalletServer]:
    config = config_for_tests("ledger", database_url, redis_server_url)
    running = await start_test_server(config, _build, static_verifier(key))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def channel(server: WalletServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _get_account(channel: grpc.aio.Channel, account_id: str, token: str | None) -> Any:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
    metadata = _auth(token) if token else None
    return await stub.GetAccount(ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=metadata)


async def _error(channel: grpc.aio.Channel, account_id: str, token: str | None) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _get_account(channel, account_id, token)
    return ErrorDetails.from_rpc_error(caught.value)


async def test_health_is_serving_per_service_and_liveness(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", LEDGER, "liveness"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_reflection_lists_the_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names = {service.name for service in reply.list_services_response.service}
        assert LEDGER in names
        assert "grpc.health.v1.Health" in names


async def test_authenticated_call_sees_the_principal(channel: grpc.aio.Channel, key: SigningKey) -> None:
    reply = await _get_account(channel, "acc-1", key.mint(sub="member-7", roles=["auditor"]))
    assert reply.account.customer_id == "member-7"


async def test_missing_token_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    details = await _error(channel, "acc-1", None)
    assert details.code is grpc.StatusCode.UNAUTHENTICATED
    assert (details.reason, details.domain) == ("UNAUTHENTICATED", "ledger.wallet")


async def test_forged_token_is_unauthenticated(channel: grpc.aio.Channel) -> None:
    details = await _error(channel, "acc-1", SigningKey().mint())
    assert details.code is grpc.StatusCode.UNAUTHENTICATED


async def test_role_without_permission_is_denied(channel: grpc.aio.Channel, key: SigningKey) -> None:
    details = await _error(channel, "acc-1", key.mint(roles=["risk_analyst"]))
    assert details.code is grpc.StatusCode.PERMISSION_DENIED
    assert details.reason == "PERMISSION_DENIED"


async def test_service_account_scope_grants_exactly_its_permission(
    channel: grpc.aio.Channel, key: SigningKey
) -> None:
    token = key.mint(pty="service", roles=[], scope="ledger.accounts.read")
    reply = await _get_account(channel, "acc-2", token)
    assert reply.account.account_id == "acc-2"


async def test_invalid_argument_has_field_violations(channel: grpc.aio.Channel, key: SigningKey) -> None:
    details = await _error(channel, "bad", key.mint())
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.field_violations == [FieldViolation("account_id", "must be a UUID")]


async def test_unexpected_error_is_generic_internal(channel: grpc.aio.Channel, key: SigningKey) -> None:
    details = await _error(channel, "boom", key.mint())
    assert details.code is grpc.StatusCode.INTERNAL
    assert details.message == INTERNAL_MESSAGE
    assert CARD_NUMBER not in details.message
    assert details.reason == "INTERNAL"


async def test_unbuilt_rpc_is_unimplemented_with_reason(channel: grpc.aio.Channel, key: SigningKey) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListAccounts(ledger_accounts_pb2.ListAccountsRequest(), metadata=_auth(key.mint()))
    details = ErrorDetails.from_rpc_error(caught.value)
    assert details.code is grpc.StatusCode.UNIMPLEMENTED
    assert details.reason == "NOT_IMPLEMENTED"


async def test_step_up_method_needs_fresh_mfa(channel: grpc.aio.Channel, key: SigningKey) -> None:
    step_up_method = next(
        m for m in ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"].methods if _needs_step_up(m.name)
    )
    call = channel.unary_unary(
        f"/{LEDGER}/{step_up_method.name}", request_serializer=lambda _: b"", response_deserializer=lambda raw: raw
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(None, metadata=_auth(key.mint(roles=["owner"], acr="pwd")))
    details = ErrorDetails.from_rpc_error(caught.value)
    assert details.code is grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "STEP_UP_REQUIRED"
    assert details.precondition_types == ["STEP_UP"]
    # With a fresh step-up the same call gets past the gate (and reaches the unbuilt handler).
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(None, metadata=_auth(key.mint(roles=["owner"], acr="mfa", auth_time=int(time.time()))))
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


def _needs_step_up(method_name: str) -> bool:
    from services.kit.policy import policy_for

    policy = policy_for(f"/{LEDGER}/{method_name}")
    return policy is not None and policy.step_up


async def test_request_id_is_echoed(channel: grpc.aio.Channel, key: SigningKey) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
    call = stub.GetAccount(
        ledger_accounts_pb2.GetAccountRequest(account_id="acc-3"),
        metadata=(*_auth(key.mint()), ("x-request-id", "req-42")),
    )
    await call
    assert ("x-request-id", "req-42") in tuple(await call.trailing_metadata() or ())


async def test_metrics_count_calls_by_code(server: WalletServer, channel: grpc.aio.Channel, key: SigningKey) -> None:
    await _get_account(channel, "acc-4", key.mint())
    await _error(channel, "acc-4", None)
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    )
    assert 'grpc_method="GetAccount",grpc_service="wallet.ledger.v1.LedgerService",service="ledger"' in body.replace(
        'grpc_code="OK",', ""
    ).replace('grpc_code="UNAUTHENTICATED",', "")
    assert 'grpc_code="UNAUTHENTICATED"' in body


async def test_stop_drains_in_flight_calls_while_health_turns_not_serving(
    server: WalletServer, channel: grpc.aio.Channel, key: SigningKey
) -> None:
    slow = asyncio.create_task(_get_account(channel, "slow", key.mint()))
    await asyncio.sleep(0.2)
    # During the drain delay the server still answers, and says it is not ready for new work.
    stopping = asyncio.create_task(server.stop(drain_delay_s=0.5))
    await asyncio.sleep(0.1)
    health = health_pb2_grpc.HealthStub(channel)
    status = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    reply = await slow
    assert reply.account.account_id == "slow"
    await stopping


async def test_calls_are_traced_without_secrets(
    channel: grpc.aio.Channel, key: SigningKey, span_exporter: InMemorySpanExporter
) -> None:
    span_exporter.clear()
    token = key.mint()
    await _get_account(channel, "acc-traced", token)
    await _error(channel, "boom", key.mint())
    spans = span_exporter.get_finished_spans()
    server_spans = [s for s in spans if s.name == f"/{LEDGER}/GetAccount" and s.kind.name == "SERVER"]
    assert len(server_spans) == 2
    assert server_spans[0].attributes is not None
    assert server_spans[0].attributes["rpc.system"] == "grpc"
    failed = server_spans[1]
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes is not None
    assert failed.attributes["wallet.error.reason"] == "INTERNAL"
    dumped = "".join(span.to_json() for span in spans)
    assert token not in dumped
    for span in spans:
        assert CARD_NUMBER not in span.to_json(), span.to_json()


async def test_service_accounts_are_not_asked_for_step_up(channel: grpc.aio.Channel, key: SigningKey) -> None:
    from services.kit.policy import policy_for

    method = next(
        m for m in ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"].methods if _needs_step_up(m.name)
    )
    policy = policy_for(f"/{LEDGER}/{method.name}")
    assert policy is not None
    call = channel.unary_unary(
        f"/{LEDGER}/{method.name}", request_serializer=lambda _: b"", response_deserializer=lambda raw: raw
    )
    token = key.mint(pty="service", roles=[], scope=policy.permission, acr="")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(None, metadata=_auth(token))
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff", b"\x0a\xff", b"\x08" + b"\xff" * 11])
async def test_undecodable_bytes_are_invalid_argument(
    channel: grpc.aio.Channel, key: SigningKey, garbage: bytes
) -> None:
    call = channel.unary_unary(
        f"/{LEDGER}/GetAccount", request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(garbage, metadata=_auth(key.mint()))
    details = ErrorDetails.from_rpc_error(caught.value)
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_REQUEST"


async def test_cancelled_calls_are_counted_as_cancelled(
    server: WalletServer, channel: grpc.aio.Channel, key: SigningKey
) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id="slow"), metadata=_auth(key.mint()), timeout=0.2
        )
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.3)  # let the server finish unwinding the cancelled handler
    body = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    )
    assert 'grpc_code="CANCELLED",grpc_method="GetAccount"' in body
