"""mobile gRPC clients through the gateway's pass-through port, to the stand-in services."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from gateway.grpc_passthrough import peer_ip
from services.kit.status import ErrorDetails
from services.kit.testing import SigningKey
from tests.integration.gateway.conftest import Stack
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2_grpc
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_public_method_is_forwarded(stack: Stack, gateway_channel: grpc.aio.Channel) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(gateway_channel)
    token = stack.token(sub="sub-9")
    metadata = (*_auth(token), ("x-request-id", "grpc-req-1"), ("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-01"))
    call = stub.GetAccount(ledger_accounts_pb2.GetAccountRequest(account_id="g-1"), metadata=metadata)
    reply = await call
    assert reply.account.account_id == "g-1"
    assert ("x-request-id", "grpc-req-1") in tuple(await call.trailing_metadata() or ())
    assert reply.account.customer_id == "sub-9"
    upstream = stack.seen.metadata[-1]
    assert upstream["authorization"] == f"Bearer {token}"
    assert upstream["x-request-id"] == "grpc-req-1"
    assert upstream["traceparent"].split("-")[1] == TRACE_ID
    assert REGISTRY.get_sample_value(
        "wallet_gateway_grpc_forwarded_total", {"grpc_method": "LedgerService.GetAccount", "grpc_code": "OK"}
    )


async def test_missing_and_forged_tokens_are_refused_at_the_edge(
    stack: Stack, gateway_channel: grpc.aio.Channel
) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(gateway_channel)
    calls = len(stack.seen.requests)
    for metadata in ((), _auth(SigningKey().mint())):
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.GetAccount(ledger_accounts_pb2.GetAccountRequest(account_id="g-1"), metadata=metadata)
        details = ErrorDetails.from_rpc_error(failure.value)
        assert details.code == grpc.StatusCode.UNAUTHENTICATED
        assert details.reason == "UNAUTHENTICATED"
        assert details.domain == "gateway.wallet"
        trailers = dict(failure.value.trailing_metadata() or ())
        assert len(str(trailers["x-request-id"])) == 36
    assert len(stack.seen.requests) == calls


async def test_service_error_details_pass_through_unchanged(stack: Stack, gateway_channel: grpc.aio.Channel) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(gateway_channel)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.GetAccount(ledger_accounts_pb2.GetAccountRequest(account_id="bad"), metadata=_auth(stack.token()))
    details = ErrorDetails.from_rpc_error(failure.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.domain == "ledger.wallet"
    assert [v.field for v in details.field_violations] == ["account_id"]


async def test_client_deadline_is_honoured(stack: Stack, gateway_channel: grpc.aio.Channel) -> None:
    stub = ledger_service_pb2_grpc.LedgerServiceStub(gateway_channel)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id="slow"), metadata=_auth(stack.token()), timeout=0.2
        )
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_anonymous_method_without_token(stack: Stack, gateway_channel: grpc.aio.Channel) -> None:
    reply = await auth_service_pb2_grpc.AuthServiceStub(gateway_channel).GetJwks(auth_keys_pb2.GetJwksRequest())
    assert reply.keys[0].kid == stack.key.kid


async def test_internal_method_is_not_served(stack: Stack, gateway_channel: grpc.aio.Channel) -> None:
    stub = risk_service_pb2_grpc.RiskServiceStub(gateway_channel)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Assess(risk_assessments_pb2.AssessRequest(), metadata=_auth(stack.token(roles=["owner"])))
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_peer_ip() -> None:
    assert peer_ip("ipv4:127.0.0.1:50000") == "127.0.0.1"
    assert peer_ip("ipv6:[::1]:50000") == "::1"
    assert peer_ip("unix:/tmp/socket") is None
