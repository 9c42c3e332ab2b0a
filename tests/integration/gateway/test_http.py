"""HTTP/JSON through the real gateway to a real kit server (stand-in servicers), over real sockets."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from gateway.problems import INTERNAL_DETAIL
from services.kit.testing import SigningKey
from tests.integration.gateway.conftest import BIG_SEQUENCE, SECRET_IN_EXCEPTION, Stack
from wallet.ledger.v1 import ledger_transfers_pb2

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_get_account_is_transcoded_and_forwarded(stack: Stack, http: httpx.AsyncClient) -> None:
    token = stack.token(sub="customer-7")
    response = await http.get(
        "/v1/accounts/acc-1",
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-123", "traceparent": CLIENT_TRACEPARENT},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    account = response.json()["account"]
    assert account["accountId"] == "acc-1"
    assert account["customerId"] == "customer-7"  # the service authenticated the forwarded token itself
    assert account["status"] == "ACCOUNT_STATUS_ACTIVE"
    assert response.headers["x-request-id"] == "req-123"
    # The trace is continued: same trace id on the response and on the upstream call.
    assert response.headers["traceparent"].split("-")[1] == TRACE_ID
    upstream = stack.seen.metadata[-1]
    assert upstream["authorization"] == f"Bearer {token}"
    assert upstream["x-request-id"] == "req-123"
    assert upstream["traceparent"].split("-")[1] == TRACE_ID


async def test_request_id_is_created_when_missing(stack: Stack, http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/accounts/acc-2", headers=stack.auth())
    assert response.status_code == 200
    created = response.headers["x-request-id"]
    assert len(created) == 36
    assert stack.seen.metadata[-1]["x-request-id"] == created
    assert response.headers["traceparent"].startswith("00-")


async def test_create_transfer_with_idempotency_key(stack: Stack, http: httpx.AsyncClient) -> None:
    body = {
        "debitAccountId": "a-1",
        "credit_account_id": "a-2",
        "amount": {"currency": "EUR", "amountMinor": "1250"},
        "reference": "rent",
    }
    headers = {**stack.auth(), "idempotency-key": "0190a0c8-0000-7000-8000-00000000abcd"}
    response = await http.post("/v1/transfers", json=body, headers=headers)
    assert response.status_code == 200, response.text
    transfer = response.json()["transfer"]
    assert transfer["transferId"] == "0190a0c8-0000-7000-8000-00000000abcd"
    assert transfer["amount"] == {"currency": "EUR", "amountMinor": "1250"}
    assert transfer["sequence"] == str(BIG_SEQUENCE)
    assert transfer["status"] == "TRANSFER_STATUS_POSTED"
    forwarded = stack.seen.requests[-1]
    assert isinstance(forwarded, ledger_transfers_pb2.CreateTransferRequest)
    assert forwarded.transfer_id == "0190a0c8-0000-7000-8000-00000000abcd"
    assert forwarded.credit_account_id == "a-2"
    # The same key given in the body too is fine; a different one is refused before any call.
    calls = len(stack.seen.requests)
    same = await http.post(
        "/v1/transfers", json={**body, "transferId": "0190a0c8-0000-7000-8000-00000000abcd"}, headers=headers
    )
    assert same.status_code == 200
    differs = await http.post("/v1/transfers", json={**body, "transferId": "other"}, headers=headers)
    assert differs.status_code == 400
    assert differs.json()["errors"][0]["field"] == "transferId"
    assert len(stack.seen.requests) == calls + 1


async def test_list_query_parameters(stack: Stack, http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/v1/transfers",
        params={"pageSize": "25", "account_id": "a-9", "status": "TRANSFER_STATUS_PENDING"},
        headers=stack.auth(),
    )
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["nextPageToken"] == "next"
    assert listed["transfers"][0]["transferId"] == "25"
    assert listed["transfers"][0]["debitAccountId"] == "a-9"
    assert listed["transfers"][0]["status"] == "TRANSFER_STATUS_PENDING"


@pytest.mark.parametrize(
    ("account_id", "status", "code"),
    [
        ("missing", 404, "NOT_FOUND"),
        ("bad", 400, "INVALID_REQUEST"),
        ("limited", 429, "RATE_LIMITED"),
        ("boom", 500, "INTERNAL"),
    ],
)
async def test_service_errors_become_problems(
    stack: Stack, http: httpx.AsyncClient, account_id: str, status: int, code: str
) -> None:
    response = await http.get(f"/v1/accounts/{account_id}", headers=stack.auth())
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert len(problem["traceId"]) == 32
    assert problem["traceId"] == response.headers["traceparent"].split("-")[1]
    assert SECRET_IN_EXCEPTION not in response.text
    assert "Traceback" not in response.text
    if account_id == "bad":
        assert problem["errors"] == [{"field": "accountId", "description": "must be a UUID"}]
    if account_id == "limited":
        assert response.headers["retry-after"] == "3"
    if account_id == "boom":
        assert problem["detail"] == INTERNAL_DETAIL


async def test_client_deadline_becomes_504(stack: Stack, http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/accounts/slow", headers={**stack.auth(), "grpc-timeout": "100m"})
    assert response.status_code == 504
    assert response.json()["code"] == "DEPENDENCY_UNAVAILABLE"
    response = await http.get("/v1/accounts/slow", headers={**stack.auth(), "request-timeout": "0.1"})
    assert response.status_code == 504


async def test_unbuilt_rpc_is_501(stack: Stack, http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/transfers/t-1", headers=stack.auth())
    assert response.status_code == 501
    assert response.json()["code"] == "NOT_IMPLEMENTED"


async def test_anonymous_method_needs_no_token_on_both_bindings(stack: Stack, http: httpx.AsyncClient) -> None:
    for path in ("/v1/jwks", "/.well-known/jwks.json"):
        response = await http.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["keys"][0]["kid"] == stack.key.kid


async def test_expired_and_forged_tokens_never_reach_the_service(stack: Stack, http: httpx.AsyncClient) -> None:
    calls = len(stack.seen.requests)
    expired = await http.get("/v1/accounts/acc-1", headers=stack.auth(exp=1))
    assert expired.status_code == 401
    forged = await http.get("/v1/accounts/acc-1", headers={"authorization": f"Bearer {SigningKey().mint()}"})
    assert forged.status_code == 401
    assert forged.json()["code"] == "UNAUTHENTICATED"
    assert len(stack.seen.requests) == calls


async def test_readyz_and_metrics(stack: Stack, http: httpx.AsyncClient) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["upstreams"]["ledger"] == "SERVING"
    labels = {"route": "/v1/accounts/{account_id}", "verb": "GET", "status": "200"}
    before = REGISTRY.get_sample_value("wallet_gateway_http_requests_total", labels) or 0.0
    await http.get("/v1/accounts/acc-3", headers=stack.auth())
    assert REGISTRY.get_sample_value("wallet_gateway_http_requests_total", labels) == before + 1
