"""Helpers for the flows through the gateway in front of the real services, over HTTP/JSON as a mobile client
would call them (sign-up, TOTP and MFA login, accounts, transfers), and the gRPC stubs for the same flows: on the
gateway's pass-through port (as a mobile app) or on the services' own ports (as in-cluster staff tools)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pyotp
from google.protobuf.field_mask_pb2 import FieldMask

from tests.integration.gateway.conftest import RealStack
from wallet.auth.v1 import auth_organizations_pb2, auth_service_pb2_grpc
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_service_pb2_grpc
from wallet.ledger.v1 import ledger_service_pb2_grpc
from wallet.risk.v1 import risk_service_pb2_grpc

OWNER_PASSWORD = "correct horse battery staple 42"
CUSTOMER_PASSWORD = "a long customer passphrase 7"
PROBLEM_JSON = "application/problem+json"


class TotpCodes:
    """Valid TOTP codes for one secret, each for a later 30-second step than the one before: auth refuses a step
    already used, and accepts one step either side of now."""

    def __init__(self, secret: str) -> None:
        self._totp = pyotp.TOTP(secret)
        self._last_step = -1

    def next(self) -> str:
        now_step = int(time.time() // 30)
        for step in (now_step - 1, now_step, now_step + 1):
            if step > self._last_step:
                self._last_step = step
                return self._totp.at(step * 30)
        raise AssertionError("no unused TOTP step left in the drift window")


def unique_slug(prefix: str = "gw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Owner:
    slug: str
    email: str
    access_token: str
    totp: TotpCodes | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def sign_up(http: httpx.AsyncClient) -> Owner:
    slug = unique_slug()
    email = f"owner@{slug}.example.com"
    organization_id = new_id()
    body = {
        "slug": slug,
        "displayName": f"Org {slug}",
        "ownerEmail": email,
        "ownerDisplayName": "Olive Owner",
        "ownerPassword": OWNER_PASSWORD,
    }
    # The create's id comes from the Idempotency-Key header (SignUpOrganizationRequest.organization_id).
    reply = ok(await http.post("/v1/organizations:signUp", json=body, headers={"idempotency-key": organization_id}))
    assert reply["organization"]["organizationId"] == organization_id
    return Owner(slug, email, reply["tokens"]["accessToken"])


async def sign_up_with_mfa(http: httpx.AsyncClient) -> Owner:
    """Signs up, turns TOTP on, and logs in again with password + TOTP: the owner now holds an MFA token."""
    owner = await sign_up(http)
    enrolment = ok(await http.post("/v1/me/totp:enroll", json={}, headers=owner.headers))
    owner.totp = TotpCodes(enrolment["secretBase32"])
    confirmed = ok(
        await http.post("/v1/me/totp:confirm", json={"totpCode": owner.totp.next()}, headers=owner.headers)
    )
    assert len(confirmed["recoveryCodes"]) == 10
    login = ok(
        await http.post(
            "/v1/sessions:login",
            json={"organizationSlug": owner.slug, "login": owner.email, "password": OWNER_PASSWORD},
        )
    )
    assert login["outcome"] == "LOGIN_OUTCOME_MFA_REQUIRED"
    assert "tokens" not in login
    verified = ok(
        await http.post(
            "/v1/sessions:verifyMfa",
            json={"mfaChallengeId": login["mfaChallenge"]["mfaChallengeId"], "totpCode": owner.totp.next()},
        )
    )
    owner.access_token = verified["tokens"]["accessToken"]
    return owner


async def open_account(http: httpx.AsyncClient, owner: Owner, kind: str) -> str:
    account_id = new_id()
    body = {"kind": kind, "currency": "EUR"}
    reply = ok(await http.post("/v1/accounts", json=body, headers={**owner.headers, "idempotency-key": account_id}))
    assert reply["account"]["accountId"] == account_id
    return account_id


async def transfer(
    http: httpx.AsyncClient, owner: Owner, debit: str, credit: str, amount_minor: int, key: str | None = None
) -> httpx.Response:
    body = {
        "debitAccountId": debit,
        "creditAccountId": credit,
        "amount": {"currency": "EUR", "amountMinor": str(amount_minor)},
        "reference": f"flow {amount_minor}",
    }
    return await http.post("/v1/transfers", json=body, headers={**owner.headers, "idempotency-key": key or new_id()})


async def allow_customer_sign_up(real_stack: RealStack, owner: Owner) -> None:
    """The tenant's admin turns on customer self sign-up: an internal method, so in-cluster, straight to auth."""
    await real_stack.services.auth.stub.UpdateOrganizationPolicy(
        auth_organizations_pb2.UpdateOrganizationPolicyRequest(
            policy=auth_organizations_pb2.OrganizationPolicy(customer_self_sign_up=True),
            update_mask=FieldMask(paths=["customer_self_sign_up"]),
            request_id=new_id(),
        ),
        metadata=(("authorization", f"Bearer {owner.access_token}"),),
    )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency="EUR", amount_minor=amount_minor)


@dataclass
class Door:
    """Stubs on one channel: the gateway's gRPC port (customers) or a service's own port (staff)."""

    auth: auth_service_pb2_grpc.AuthServiceStub
    ledger: ledger_service_pb2_grpc.LedgerServiceStub
    contacts: contacts_service_pb2_grpc.ContactsServiceStub
    risk: risk_service_pb2_grpc.RiskServiceStub


def door_on(channels: dict[str, grpc.aio.Channel]) -> Door:
    return Door(
        auth_service_pb2_grpc.AuthServiceStub(channels["auth"]),
        ledger_service_pb2_grpc.LedgerServiceStub(channels["ledger"]),
        contacts_service_pb2_grpc.ContactsServiceStub(channels["contacts"]),
        risk_service_pb2_grpc.RiskServiceStub(channels["risk"]),
    )


@asynccontextmanager
async def open_doors(real_stack: RealStack) -> AsyncIterator[tuple[Door, Door]]:
    """(the gateway's door, the services' own ports)."""
    gateway = grpc.aio.insecure_channel(real_stack.grpc_address)
    direct = {name: grpc.aio.insecure_channel(address) for name, address in real_stack.services.addresses.items()}
    try:
        yield door_on(dict.fromkeys(direct, gateway)), door_on(direct)
    finally:
        await gateway.close()
        for channel in direct.values():
            await channel.close()
