"""The edge in front of the real services: tokens auth issued (missing, expired, forged → 401 problem+json, or
UNAUTHENTICATED on the gRPC door), rate limits (429 with Retry-After), and an internal-only method that neither door
reaches although the service behind it serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from services.kit.status import ErrorDetails
from services.kit.testing import SigningKey
from tests.integration.gateway.conftest import RealStack, RunningGateway, start_gateway
from tests.integration.gateway.flows import OWNER_PASSWORD, PROBLEM_JSON, ok, sign_up
from wallet.contacts.v1 import contacts_contact_pb2, contacts_service_pb2_grpc
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2_grpc

pytestmark = pytest.mark.integration

# Further back than any access-token lifetime auth issues.
PAST_S = 24 * 3600.0
REVEAL_METHOD = "/wallet.contacts.v1.ContactsService/RevealContact"


@pytest.fixture
async def http(real_stack: RealStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=real_stack.http_url, timeout=30.0) as client:
        yield client


async def expired_token(real_stack: RealStack, http: httpx.AsyncClient) -> str:
    """A token auth really signed, with an ``exp`` in the past: logged in while auth's clock ran a day behind."""
    owner = await sign_up(http)
    auth = real_stack.services.auth
    auth.clock.advance(-PAST_S)
    try:
        login = ok(
            await http.post(
                "/v1/sessions:login",
                json={"organizationSlug": owner.slug, "login": owner.email, "password": OWNER_PASSWORD},
            )
        )
    finally:
        auth.clock.advance(PAST_S)
    token: str = login["tokens"]["accessToken"]
    return token


def tampered(token: str) -> str:
    """Auth's token with one character of its signature changed."""
    head, _, signature = token.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{flipped}{signature[1:]}"


async def test_missing_expired_and_forged_tokens_get_401(real_stack: RealStack, http: httpx.AsyncClient) -> None:
    owner = await sign_up(http)
    assert (await http.get("/v1/accounts", headers=owner.headers)).status_code == 200
    forged_by_stranger = SigningKey().mint(org=new_org_of(owner.access_token))
    cases = {
        "missing": {},
        "not bearer": {"authorization": f"Basic {owner.access_token}"},
        "expired": {"authorization": f"Bearer {await expired_token(real_stack, http)}"},
        "forged key": {"authorization": f"Bearer {forged_by_stranger}"},
        "tampered": {"authorization": f"Bearer {tampered(owner.access_token)}"},
    }
    for name, headers in cases.items():
        response = await http.get("/v1/accounts", headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        problem = response.json()
        assert problem["status"] == 401, name
        assert problem["code"] == "UNAUTHENTICATED", name
        assert len(problem["traceId"]) == 32, name


def new_org_of(token: str) -> str:
    import jwt

    org: str = jwt.decode(token, options={"verify_signature": False})["org"]
    return org


async def test_grpc_door_refuses_the_same_tokens(real_stack: RealStack, http: httpx.AsyncClient) -> None:
    owner = await sign_up(http)
    expired = await expired_token(real_stack, http)
    async with grpc.aio.insecure_channel(real_stack.grpc_address) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        listed = await stub.ListAccounts(
            ledger_accounts_pb2.ListAccountsRequest(), metadata=owner_metadata(owner.access_token)
        )
        assert list(listed.accounts) == []
        for token in (None, expired, SigningKey().mint(), tampered(owner.access_token)):
            metadata = owner_metadata(token) if token else ()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListAccounts(ledger_accounts_pb2.ListAccountsRequest(), metadata=metadata)
            details = ErrorDetails.from_rpc_error(refused.value)
            assert details.code == grpc.StatusCode.UNAUTHENTICATED
            assert details.reason == "UNAUTHENTICATED"


def owner_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def strict_gateway(real_stack: RealStack) -> AsyncIterator[RunningGateway]:
    """A second gateway in front of the same services with a burst of 3 calls per token."""
    gateway = await start_gateway(
        real_stack.environ(GATEWAY_RATE_PER_SUBJECT_PER_S="0.2", GATEWAY_BURST_PER_SUBJECT="3")
    )
    try:
        yield gateway
    finally:
        await gateway.stop()


async def test_rate_limit_gives_429_with_retry_after(strict_gateway: RunningGateway, http: httpx.AsyncClient) -> None:
    owner = await sign_up(http)
    async with httpx.AsyncClient(base_url=strict_gateway.http_url, timeout=30.0) as client:
        statuses = [(await client.get("/v1/accounts", headers=owner.headers)).status_code for _ in range(3)]
        refused = await client.get("/v1/accounts", headers=owner.headers)
        other = await sign_up(client)  # anonymous: limited per IP only, not by the busy token
        other_listed = await client.get("/v1/accounts", headers=other.headers)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert other_listed.status_code == 200
    async with grpc.aio.insecure_channel(f"127.0.0.1:{strict_gateway.grpc_port}") as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await stub.ListAccounts(
                ledger_accounts_pb2.ListAccountsRequest(), metadata=owner_metadata(owner.access_token)
            )
    details = ErrorDetails.from_rpc_error(limited.value)
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.retry_after_s is not None
    assert details.retry_after_s > 0


async def test_internal_method_is_not_reachable(real_stack: RealStack, http: httpx.AsyncClient) -> None:
    owner = await sign_up(http)
    request = contacts_contact_pb2.RevealContactRequest(
        contact_id="0190a0c8-0000-7000-8000-000000000001",
        reveal_purpose=contacts_contact_pb2.REVEAL_PURPOSE_SUBJECT_REQUEST,
        justification="ticket 1",
    )
    # Straight to contacts the method exists: contacts itself answers (it wants a stepped-up, platform caller).
    direct = ErrorDetails.from_rpc_error(
        await rpc_error(real_stack.services.addresses["contacts"], request, owner.access_token)
    )
    assert direct.code != grpc.StatusCode.UNIMPLEMENTED
    assert direct.domain == "contacts.wallet"
    # Through the gRPC door it does not exist at all.
    door = ErrorDetails.from_rpc_error(await rpc_error(real_stack.grpc_address, request, owner.access_token))
    assert door.code == grpc.StatusCode.UNIMPLEMENTED
    # Over HTTP there is no route to it, whatever the spelling.
    for path in (REVEAL_METHOD, "/v1/contacts/0190a0c8-0000-7000-8000-000000000001:reveal"):
        response = await http.post(
            path, json={"revealPurpose": "REVEAL_PURPOSE_SUBJECT_REQUEST"}, headers=owner.headers
        )
        assert response.status_code in (404, 405), (path, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON


async def rpc_error(
    address: str, request: contacts_contact_pb2.RevealContactRequest, token: str
) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        try:
            await stub.RevealContact(request, metadata=owner_metadata(token))
        except grpc.aio.AioRpcError as error:
            return error
    raise AssertionError(f"RevealContact answered through {address}")
