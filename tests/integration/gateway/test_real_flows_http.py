"""The main mobile flows as HTTP/JSON through the gateway, against the real auth, ledger and contacts services:
sign up an organization, turn on TOTP and log in with MFA, open accounts, transfer with Idempotency-Key replay and
reuse, page a statement, store a contact and read it back masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from tests.integration.gateway.conftest import RealStack
from tests.integration.gateway.flows import (
    CUSTOMER_PASSWORD,
    OWNER_PASSWORD,
    PROBLEM_JSON,
    Owner,
    allow_customer_sign_up,
    new_id,
    ok,
    open_account,
    sign_up,
    sign_up_with_mfa,
    transfer,
)

pytestmark = pytest.mark.integration

PHONE_NUMBER = "138 1234 5678"
STATEMENT_TRANSFERS = 5
STATEMENT_PAGE_SIZE = 2


@pytest.fixture
async def http(real_stack: RealStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=real_stack.http_url, timeout=30.0) as client:
        yield client


async def credited_minor(http: httpx.AsyncClient, owner: Owner, account_id: str) -> int:
    account = ok(await http.get(f"/v1/accounts/{account_id}", headers=owner.headers))["account"]
    return int(account["balance"]["postedCreditsMinor"])


async def test_sign_up_and_login_with_mfa(http: httpx.AsyncClient) -> None:
    owner = await sign_up_with_mfa(http)
    claims = jwt.decode(owner.access_token, options={"verify_signature": False})
    assert claims["acr"] == "mfa"
    assert set(claims["amr"]) == {"pwd", "otp"}
    me = ok(await http.get("/v1/me", headers=owner.headers))["principal"]
    assert me["email"] == owner.email
    assert me["totpEnrolled"] is True
    # A wrong code is a problem+json with auth's reason.
    login = ok(
        await http.post(
            "/v1/sessions:login",
            json={"organizationSlug": owner.slug, "login": owner.email, "password": OWNER_PASSWORD},
        )
    )
    refused = await http.post(
        "/v1/sessions:verifyMfa",
        json={"mfaChallengeId": login["mfaChallenge"]["mfaChallengeId"], "totpCode": "000000"},
    )
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["code"] == "MFA_CODE_INVALID"


async def test_transfer_replay_and_key_reuse(http: httpx.AsyncClient) -> None:
    owner = await sign_up_with_mfa(http)
    funding = await open_account(http, owner, "ACCOUNT_KIND_SUSPENSE")
    wallet = await open_account(http, owner, "ACCOUNT_KIND_OPERATING")
    key = new_id()
    first = ok(await transfer(http, owner, funding, wallet, 1250, key))["transfer"]
    assert first["transferId"] == key
    assert first["status"] == "TRANSFER_STATUS_POSTED"
    assert first["amount"] == {"currency": "EUR", "amountMinor": "1250"}
    replay = ok(await transfer(http, owner, funding, wallet, 1250, key))["transfer"]
    assert replay == first
    assert await credited_minor(http, owner, wallet) == 1250
    reused = await transfer(http, owner, funding, wallet, 999, key)
    assert reused.status_code == 409, reused.text
    assert reused.headers["content-type"] == PROBLEM_JSON
    problem = reused.json()
    assert problem["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert problem["status"] == 409
    assert problem["type"] == "urn:wallet:problem:IDEMPOTENCY_KEY_REUSED"
    assert len(problem["traceId"]) == 32
    assert await credited_minor(http, owner, wallet) == 1250


async def test_statement_pages(http: httpx.AsyncClient) -> None:
    owner = await sign_up(http)
    funding = await open_account(http, owner, "ACCOUNT_KIND_SUSPENSE")
    wallet = await open_account(http, owner, "ACCOUNT_KIND_OPERATING")
    amounts = [100 * (index + 1) for index in range(STATEMENT_TRANSFERS)]
    transfer_ids = [
        ok(await transfer(http, owner, funding, wallet, amount))["transfer"]["transferId"] for amount in amounts
    ]
    lines: list[dict[str, Any]] = []
    pages = 0
    params: dict[str, str | int] = {"pageSize": STATEMENT_PAGE_SIZE}
    while True:
        page = ok(await http.get(f"/v1/accounts/{wallet}/statement", params=params, headers=owner.headers))
        pages += 1
        assert len(page.get("lines", [])) <= STATEMENT_PAGE_SIZE
        lines.extend(page.get("lines", []))
        if not page.get("nextPageToken"):
            break
        params = {"pageSize": STATEMENT_PAGE_SIZE, "pageToken": page["nextPageToken"]}
    assert pages == -(-STATEMENT_TRANSFERS // STATEMENT_PAGE_SIZE)
    assert [line["transferId"] for line in lines] == transfer_ids
    assert [int(line["amount"]["amountMinor"]) for line in lines] == amounts
    assert int(lines[-1]["runningBalance"]["amountMinor"]) == sum(amounts)
    bad_token = await http.get(
        f"/v1/accounts/{wallet}/statement", params={"pageToken": "not-a-token"}, headers=owner.headers
    )
    assert bad_token.status_code == 400, bad_token.text
    assert bad_token.headers["content-type"] == PROBLEM_JSON


async def test_customer_stores_a_contact_and_reads_it_masked(http: httpx.AsyncClient, real_stack: RealStack) -> None:
    owner = await sign_up_with_mfa(http)
    await allow_customer_sign_up(real_stack, owner)
    customer_id = new_id()
    signed_up = ok(
        await http.post(
            "/v1/customers:signUp",
            json={
                "organizationSlug": owner.slug,
                "email": f"customer@{owner.slug}.example.com",
                "displayName": "Casey Customer",
                "password": CUSTOMER_PASSWORD,
            },
            headers={"idempotency-key": customer_id},
        )
    )
    headers = {"authorization": f"Bearer {signed_up['tokens']['accessToken']}"}
    contact_id = new_id()
    body = {
        "phoneNumber": PHONE_NUMBER,
        "regionHint": "CN",
        "purposes": ["PURPOSE_TRANSACTION_ALERTS"],
        "consentReference": "consent-gw-1",
        "retention": "31536000s",
    }
    stored = await http.post("/v1/contacts", json=body, headers={**headers, "idempotency-key": contact_id})
    contact = ok(stored)["contact"]
    assert contact["contactId"] == contact_id
    assert contact["customerId"] == customer_id
    assert contact["maskedPhoneNumber"] == "+86 138****5678"
    read = await http.get(f"/v1/contacts/{contact_id}", headers=headers)
    assert ok(read)["contact"]["maskedPhoneNumber"] == "+86 138****5678"
    for response in (stored, read):
        assert "13812345678" not in response.text
        assert "1234" not in response.json()["contact"]["maskedPhoneNumber"]
    # Another customer of another tenant does not see it.
    stranger = await sign_up(http)
    hidden = await http.get(f"/v1/contacts/{contact_id}", headers=stranger.headers)
    assert hidden.status_code == 404, hidden.text
    assert hidden.headers["content-type"] == PROBLEM_JSON
