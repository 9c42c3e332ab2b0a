"""The same main flows as generated-stub gRPC calls through the gateway's pass-through port, against the real
auth, ledger and contacts services: sign-up, TOTP and MFA login, accounts, a transfer replayed by its id and the id
reused with another body, statement paging, a contact stored and read back masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import jwt
import pytest
from google.protobuf.duration_pb2 import Duration

from services.kit.status import ErrorDetails
from tests.integration.gateway.conftest import RealStack
from tests.integration.gateway.flows import (
    CUSTOMER_PASSWORD,
    OWNER_PASSWORD,
    Owner,
    TotpCodes,
    allow_customer_sign_up,
    new_id,
    unique_slug,
)
from wallet.auth.v1 import (
    auth_credentials_pb2,
    auth_customers_pb2,
    auth_organizations_pb2,
    auth_service_pb2_grpc,
    auth_sessions_pb2,
)
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_contact_pb2, contacts_service_pb2_grpc
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_service_pb2_grpc,
    ledger_statements_pb2,
    ledger_transfers_pb2,
)

pytestmark = pytest.mark.integration

STATEMENT_TRANSFERS = 5
STATEMENT_PAGE_SIZE = 2


@dataclass
class Stubs:
    auth: auth_service_pb2_grpc.AuthServiceStub
    ledger: ledger_service_pb2_grpc.LedgerServiceStub
    contacts: contacts_service_pb2_grpc.ContactsServiceStub


@pytest.fixture
async def door(real_stack: RealStack) -> AsyncIterator[Stubs]:
    """Stubs on a channel to the gateway's gRPC port (not to the services)."""
    async with grpc.aio.insecure_channel(real_stack.grpc_address) as channel:
        yield Stubs(
            auth_service_pb2_grpc.AuthServiceStub(channel),
            ledger_service_pb2_grpc.LedgerServiceStub(channel),
            contacts_service_pb2_grpc.ContactsServiceStub(channel),
        )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def sign_up_with_mfa(door: Stubs) -> Owner:
    slug = unique_slug("grpc")
    email = f"owner@{slug}.example.com"
    signed_up = await door.auth.SignUpOrganization(
        auth_organizations_pb2.SignUpOrganizationRequest(
            organization_id=new_id(),
            slug=slug,
            display_name=f"Org {slug}",
            owner_email=email,
            owner_display_name="Olive Owner",
            owner_password=OWNER_PASSWORD,
        )
    )
    first_token = signed_up.tokens.access_token
    enrolment = await door.auth.EnrollTotp(auth_credentials_pb2.EnrollTotpRequest(), metadata=bearer(first_token))
    totp = TotpCodes(enrolment.secret_base32)
    await door.auth.ConfirmTotp(
        auth_credentials_pb2.ConfirmTotpRequest(totp_code=totp.next()), metadata=bearer(first_token)
    )
    login = await door.auth.Login(
        auth_sessions_pb2.LoginRequest(organization_slug=slug, login=email, password=OWNER_PASSWORD)
    )
    assert login.outcome == auth_sessions_pb2.LOGIN_OUTCOME_MFA_REQUIRED
    assert not login.HasField("tokens")
    verified = await door.auth.VerifyMfa(
        auth_sessions_pb2.VerifyMfaRequest(
            mfa_challenge_id=login.mfa_challenge.mfa_challenge_id, totp_code=totp.next()
        )
    )
    token = verified.tokens.access_token
    assert jwt.decode(token, options={"verify_signature": False})["acr"] == "mfa"
    return Owner(slug, email, token, totp)


async def open_account(door: Stubs, owner: Owner, kind: int) -> str:
    account_id = new_id()
    reply = await door.ledger.OpenAccount(
        ledger_accounts_pb2.OpenAccountRequest(account_id=account_id, kind=kind, currency="EUR"),
        metadata=bearer(owner.access_token),
    )
    assert reply.account.account_id == account_id
    return account_id


def transfer_request(
    debit: str, credit: str, amount_minor: int, transfer_id: str | None = None
) -> ledger_transfers_pb2.CreateTransferRequest:
    return ledger_transfers_pb2.CreateTransferRequest(
        transfer_id=transfer_id or new_id(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
        reference=f"grpc {amount_minor}",
    )


async def test_mfa_login_accounts_transfers_and_statement(door: Stubs) -> None:
    owner = await sign_up_with_mfa(door)
    auth = bearer(owner.access_token)
    funding = await open_account(door, owner, ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE)
    wallet = await open_account(door, owner, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING)
    first = transfer_request(funding, wallet, 100)
    created = (await door.ledger.CreateTransfer(first, metadata=auth)).transfer
    assert created.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    replayed = (await door.ledger.CreateTransfer(first, metadata=auth)).transfer
    assert replayed == created
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await door.ledger.CreateTransfer(transfer_request(funding, wallet, 999, first.transfer_id), metadata=auth)
    details = ErrorDetails.from_rpc_error(reused.value)
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    transfer_ids = [created.transfer_id]
    for amount in range(200, 100 * (STATEMENT_TRANSFERS + 1), 100):
        transfer_ids.append(
            (
                await door.ledger.CreateTransfer(transfer_request(funding, wallet, amount), metadata=auth)
            ).transfer.transfer_id
        )
    seen: list[str] = []
    page_token = ""
    pages = 0
    while True:
        page = await door.ledger.GetStatement(
            ledger_statements_pb2.GetStatementRequest(
                account_id=wallet, page_size=STATEMENT_PAGE_SIZE, page_token=page_token
            ),
            metadata=auth,
        )
        pages += 1
        seen.extend(line.transfer_id for line in page.lines)
        if not page.next_page_token:
            break
        page_token = page.next_page_token
    assert seen == transfer_ids
    assert pages == -(-STATEMENT_TRANSFERS // STATEMENT_PAGE_SIZE)


async def test_customer_contact_is_masked(door: Stubs, real_stack: RealStack) -> None:
    owner = await sign_up_with_mfa(door)
    await allow_customer_sign_up(real_stack, owner)
    customer = await door.auth.SignUpCustomer(
        auth_customers_pb2.SignUpCustomerRequest(
            customer_id=new_id(),
            organization_slug=owner.slug,
            email=f"customer@{owner.slug}.example.com",
            display_name="Casey Customer",
            password=CUSTOMER_PASSWORD,
        )
    )
    auth = bearer(customer.tokens.access_token)
    stored = await door.contacts.StoreContact(
        contacts_contact_pb2.StoreContactRequest(
            contact_id=new_id(),
            phone_number="+44 7911 123456",
            purposes=[contacts_contact_pb2.PURPOSE_SUPPORT],
            consent_reference="consent-grpc-1",
            retention=Duration(seconds=365 * 24 * 3600),
        ),
        metadata=auth,
    )
    read = await door.contacts.GetContact(
        contacts_contact_pb2.GetContactRequest(contact_id=stored.contact.contact_id), metadata=auth
    )
    assert read.contact.customer_id == customer.customer.customer_id
    assert read.contact.masked_phone_number == stored.contact.masked_phone_number
    assert "*" in read.contact.masked_phone_number
    assert "7911123456" not in read.contact.SerializeToString().decode("utf-8", "replace")
