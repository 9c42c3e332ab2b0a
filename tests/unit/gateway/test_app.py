"""The HTTP app in process (ASGI transport): everything the gateway decides before any upstream is called."""

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.config import load_gateway_config
from gateway.runtime import GatewayRuntime, build_runtime
from services.kit.testing import SigningKey, static_verifier

KEY = SigningKey()
# Nothing listens there: these tests never reach an upstream.
NOWHERE = "127.0.0.1:9"


@pytest.fixture(scope="module")
async def runtime() -> AsyncIterator[GatewayRuntime]:
    environ = {f"{name}_ADDR": NOWHERE for name in ("AUTH", "LEDGER", "CONTACTS", "RISK")}
    environ.update(GATEWAY_MAX_BODY_BYTES="2048", GATEWAY_MAX_JSON_DEPTH="6", GATEWAY_RATE_LIMIT_KEY="k")
    built = build_runtime(load_gateway_config(environ), verifier=static_verifier(KEY))
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def client(runtime: GatewayRuntime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as opened:
        yield opened


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {KEY.mint()}"}


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope", headers={"x-request-id": "req-42"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "NOT_FOUND"
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not-a-jwt"}, {"authorization": f"Bearer {SigningKey().mint()}"}],
    ids=["missing", "malformed", "forged"],
)
async def test_tokens_are_checked_at_the_edge(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/v1/accounts/a-1", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accounts/a-1", headers={"authorization": f"Bearer {KEY.mint(exp=1)}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_malformed_json_is_400_naming_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transfers", content=b'{"transferId": ', headers=_auth())
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "INVALID_REQUEST"
    assert problem["errors"][0]["field"] == "*"


async def test_unknown_field_is_400_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transfers", json={"transferId": "t", "colour": "red"}, headers=_auth())
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "colour", "description": "unknown field"}]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transfers", content=b" " * 4096, headers=_auth())
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_deep_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transfers", content=b'{"a":' * 7 + b"1" + b"}" * 7, headers=_auth())
    assert response.status_code == 400
    assert "deeper" in response.json()["errors"][0]["description"]


async def test_idempotency_key_conflicting_with_the_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/transfers", json={"transferId": "t-1"}, headers={**_auth(), "idempotency-key": "t-2"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "transferId"


async def test_bad_timeout_header_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accounts/a-1", headers={**_auth(), "grpc-timeout": "soon"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "grpc-timeout"


async def test_upstream_down_is_503_problem_without_addresses(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accounts/a-1", headers={**_auth(), "grpc-timeout": "2S"})
    assert response.status_code in (503, 504)
    body = response.text
    assert "127.0.0.1" not in body
    assert response.json()["code"] == "DEPENDENCY_UNAVAILABLE"


async def test_readyz_reports_upstreams_not_serving(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["upstreams"]["ledger"] == "NOT_SERVING"


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "/v1/accounts/{account_id}" in document["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "docs.js" in docs.text
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    script = await client.get("/static/docs.js")
    assert script.status_code == 200
    assert "openapi.json" in script.text


async def test_cors_is_off_by_default_and_configurable(client: httpx.AsyncClient) -> None:
    preflight_headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
    closed = await client.options("/v1/transfers", headers=preflight_headers)
    assert "access-control-allow-origin" not in closed.headers
    environ = {f"{name}_ADDR": NOWHERE for name in ("AUTH", "LEDGER", "CONTACTS", "RISK")}
    environ["GATEWAY_CORS_ORIGINS"] = "https://app.example, https://other.example"
    runtime = build_runtime(load_gateway_config(environ), verifier=static_verifier(KEY))
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as cors_client:
            preflight = await cors_client.options(
                "/v1/transfers", headers={**preflight_headers, "access-control-request-headers": "idempotency-key"}
            )
            refused = await cors_client.options(
                "/v1/transfers", headers={**preflight_headers, "origin": "https://evil.example"}
            )
            simple = await cors_client.get("/healthz", headers={"origin": "https://app.example"})
    finally:
        await runtime.close()
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_wrong_verb_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/transfers", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 405


async def test_client_gone_before_its_body_is_not_an_error(
    runtime: GatewayRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that disconnects while sending its body (load generators at the end of a run, flaky mobile links)
    gets no answer and leaves no ERROR in the log."""
    sent: list[dict[str, object]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/transfers",
        "raw_path": b"/v1/transfers",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {KEY.mint()}".encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await create_app(runtime)(scope, receive, send)
    assert sent[0]["status"] == 499
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
