"""A disputed card payment upheld with a partial refund, end to end across the real auth, ledger, contacts and risk
services (issue 14): a customer's wallet and card, a card payment authorized and captured, the customer's complaint
through the gateway, acknowledged by a support member, resolved by an approver (MFA) with a partial refund through
the ledger's ReverseTransfer, balances checked, and the customer's SMS about the outcome found in the vault's sink.

Customer calls go through the gateway's gRPC door as an app's would; staff and card-processor calls are internal
(``public: false``) and go to the services directly, as in-cluster staff tools do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from tests.integration.gateway.conftest import RealStack
from tests.integration.gateway.flows import (
    CUSTOMER_PASSWORD,
    OWNER_PASSWORD,
    Door,
    Owner,
    TotpCodes,
    allow_customer_sign_up,
    bearer,
    eur,
    new_id,
    open_doors,
    unique_slug,
)
from wallet.auth.v1 import (
    auth_credentials_pb2,
    auth_customers_pb2,
    auth_identity_pb2,
    auth_members_pb2,
    auth_organizations_pb2,
    auth_service_pb2_grpc,
    auth_sessions_pb2,
)
from wallet.contacts.v1 import contacts_contact_pb2
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_cards_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)
from wallet.risk.v1 import risk_complaints_pb2 as pb

pytestmark = pytest.mark.integration

FUNDS_MINOR = 50_000
AUTHORIZED_MINOR = 12_000
CAPTURED_MINOR = 10_000
REFUND_MINOR = 4_000
MEMBER_PASSWORD = "a long member passphrase 9"
PHONE = "+44 7911 123456"
PHONE_E164 = "+447911123456"


@pytest.fixture
async def doors(real_stack: RealStack) -> AsyncIterator[tuple[Door, Door]]:
    """(the gateway's door, the services' own ports)."""
    async with open_doors(real_stack) as pair:
        yield pair


async def mfa_login(
    auth: auth_service_pb2_grpc.AuthServiceStub, slug: str, email: str, password: str, token: str
) -> str:
    """Enrols TOTP with ``token`` and logs in again with it: an access token with a fresh step-up (acr=mfa)."""
    enrolment = await auth.EnrollTotp(auth_credentials_pb2.EnrollTotpRequest(), metadata=bearer(token))
    totp = TotpCodes(enrolment.secret_base32)
    await auth.ConfirmTotp(auth_credentials_pb2.ConfirmTotpRequest(totp_code=totp.next()), metadata=bearer(token))
    login = await auth.Login(auth_sessions_pb2.LoginRequest(organization_slug=slug, login=email, password=password))
    assert login.outcome == auth_sessions_pb2.LOGIN_OUTCOME_MFA_REQUIRED
    verified = await auth.VerifyMfa(
        auth_sessions_pb2.VerifyMfaRequest(
            mfa_challenge_id=login.mfa_challenge.mfa_challenge_id, totp_code=totp.next()
        )
    )
    return str(verified.tokens.access_token)


async def member(
    auth: auth_service_pb2_grpc.AuthServiceStub, slug: str, owner_token: str, role: int, *, mfa: bool = False
) -> str:
    """A member with one role invited by the owner, signed in (with MFA when asked): their access token."""
    email = f"{auth_identity_pb2.Role.Name(role).lower()}@{slug}.example.com"
    invited = await auth.InviteMember(
        auth_members_pb2.InviteMemberRequest(member_id=new_id(), email=email, display_name="Sam Staff", roles=[role]),
        metadata=bearer(owner_token),
    )
    await auth.AcceptInvitation(
        auth_members_pb2.AcceptInvitationRequest(
            invitation_token=invited.invitation.invitation_token, password=MEMBER_PASSWORD
        )
    )
    login = await auth.Login(
        auth_sessions_pb2.LoginRequest(organization_slug=slug, login=email, password=MEMBER_PASSWORD)
    )
    token = str(login.tokens.access_token)
    return await mfa_login(auth, slug, email, MEMBER_PASSWORD, token) if mfa else token


async def balance(ledger: ledger_service_pb2_grpc.LedgerServiceStub, account_id: str, token: str) -> int:
    """Credits minus debits posted: what the account holds."""
    reply = await ledger.GetAccount(
        ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=bearer(token)
    )
    posted = reply.account.balance
    return int(posted.posted_credits_minor - posted.posted_debits_minor)


async def test_a_disputed_card_payment_is_upheld_with_a_partial_refund(
    real_stack: RealStack, doors: tuple[Door, Door]
) -> None:
    app, direct = doors
    # --- a tenant with an MFA owner (who also acts as the card processor), a customer, support and an approver ---
    slug = unique_slug("dispute")
    owner_email = f"owner@{slug}.example.com"
    signed_up = await direct.auth.SignUpOrganization(
        auth_organizations_pb2.SignUpOrganizationRequest(
            organization_id=new_id(),
            slug=slug,
            display_name=f"Org {slug}",
            owner_email=owner_email,
            owner_display_name="Olive Owner",
            owner_password=OWNER_PASSWORD,
        )
    )
    owner = await mfa_login(direct.auth, slug, owner_email, OWNER_PASSWORD, signed_up.tokens.access_token)
    await allow_customer_sign_up(real_stack, Owner(slug, owner_email, owner))
    customer_signed_up = await app.auth.SignUpCustomer(
        auth_customers_pb2.SignUpCustomerRequest(
            customer_id=new_id(),
            organization_slug=slug,
            email=f"customer@{slug}.example.com",
            display_name="Casey Customer",
            password=CUSTOMER_PASSWORD,
        )
    )
    customer = customer_signed_up.tokens.access_token
    customer_id = customer_signed_up.customer.customer_id
    support = await member(direct.auth, slug, owner, auth_identity_pb2.ROLE_SUPPORT)
    approver = await member(direct.auth, slug, owner, auth_identity_pb2.ROLE_APPROVER, mfa=True)

    # --- the customer's wallet (funded), contact for support messages and card; the merchant's account ---
    await app.contacts.StoreContact(
        contacts_contact_pb2.StoreContactRequest(
            contact_id=new_id(),
            phone_number=PHONE,
            purposes=[contacts_contact_pb2.PURPOSE_SUPPORT],
            consent_reference="consent-dispute-1",
            retention=Duration(seconds=365 * 24 * 3600),
        ),
        metadata=bearer(customer),
    )
    wallet = new_id()
    await app.ledger.OpenAccount(
        ledger_accounts_pb2.OpenAccountRequest(
            account_id=wallet, kind=ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET, currency="EUR"
        ),
        metadata=bearer(customer),
    )
    funding, merchant = new_id(), new_id()
    for account_id, kind in (
        (funding, ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE),
        (merchant, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING),
    ):
        await direct.ledger.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(account_id=account_id, kind=kind, currency="EUR"),
            metadata=bearer(owner),
        )
    await direct.ledger.CreateTransfer(
        ledger_transfers_pb2.CreateTransferRequest(
            transfer_id=new_id(), debit_account_id=funding, credit_account_id=wallet, amount=eur(FUNDS_MINOR)
        ),
        metadata=bearer(owner),
    )
    card = (
        await app.ledger.IssueCard(
            ledger_cards_pb2.IssueCardRequest(card_id=new_id(), account_id=wallet, label="online"),
            metadata=bearer(customer),
        )
    ).card

    # --- a card payment: authorized, then captured in part ---
    payment_id = new_id()
    await direct.ledger.AuthorizeCardPayment(
        ledger_cards_pb2.AuthorizeCardPaymentRequest(
            transfer_id=payment_id, card_id=card.card_id, merchant_account_id=merchant, amount=eur(AUTHORIZED_MINOR)
        ),
        metadata=bearer(owner),
    )
    captured = (
        await direct.ledger.CaptureCardPayment(
            ledger_cards_pb2.CaptureCardPaymentRequest(
                transfer_id=payment_id, amount=eur(CAPTURED_MINOR), request_id=new_id()
            ),
            metadata=bearer(owner),
        )
    ).transfer
    assert captured.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert await balance(direct.ledger, wallet, owner) == FUNDS_MINOR - CAPTURED_MINOR

    # --- the customer disputes it through the gateway ---
    complaint = (
        await app.risk.OpenComplaint(
            pb.OpenComplaintRequest(
                complaint_id=new_id(),
                category=pb.COMPLAINT_CATEGORY_CARD_PAYMENT,
                transfer_id=payment_id,
                description="The merchant charged 100 EUR but the order was 60 EUR.",
                attachment_references=["doc-store://receipts/order-1"],
            ),
            metadata=bearer(customer),
        )
    ).complaint
    assert complaint.status == pb.COMPLAINT_STATUS_RECEIVED
    assert complaint.card_id == card.card_id
    assert complaint.customer_id == customer_id
    assert complaint.reference_number.startswith("CMP-")

    # --- support acknowledges; the approver upholds with a partial refund ---
    acknowledged = (
        await direct.risk.AcknowledgeComplaint(
            pb.AcknowledgeComplaintRequest(complaint_id=complaint.complaint_id, request_id=new_id()),
            metadata=bearer(support),
        )
    ).complaint
    assert acknowledged.status == pb.COMPLAINT_STATUS_IN_PROGRESS
    refused = direct.risk.ResolveComplaint(
        pb.ResolveComplaintRequest(
            complaint_id=complaint.complaint_id,
            outcome=pb.COMPLAINT_OUTCOME_UPHELD,
            reason="Overcharged.",
            refund_amount=eur(REFUND_MINOR),
            request_id=new_id(),
        ),
        metadata=bearer(support),
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_an_approver:
        await refused
    assert not_an_approver.value.code() == grpc.StatusCode.PERMISSION_DENIED
    reason = "You were overcharged by 40 EUR; we refunded the difference."
    upheld = (
        await direct.risk.ResolveComplaint(
            pb.ResolveComplaintRequest(
                complaint_id=complaint.complaint_id,
                outcome=pb.COMPLAINT_OUTCOME_UPHELD,
                reason=reason,
                refund_amount=eur(REFUND_MINOR),
                request_id=new_id(),
            ),
            metadata=bearer(approver),
        )
    ).complaint
    assert upheld.status == pb.COMPLAINT_STATUS_UPHELD
    refund_id = upheld.resolution.refund_transfer_id

    # --- the money: the refund is a reversal linked to the payment; balances moved by exactly the refund ---
    refund = (
        await direct.ledger.GetTransfer(
            ledger_transfers_pb2.GetTransferRequest(transfer_id=refund_id), metadata=bearer(owner)
        )
    ).transfer
    assert refund.reversal_of_transfer_id == payment_id
    assert refund.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert (refund.debit_account_id, refund.credit_account_id) == (merchant, wallet)
    assert refund.amount == eur(REFUND_MINOR)
    original = (
        await direct.ledger.GetTransfer(
            ledger_transfers_pb2.GetTransferRequest(transfer_id=payment_id), metadata=bearer(owner)
        )
    ).transfer
    assert original.reversed_amount == eur(REFUND_MINOR)
    assert await balance(direct.ledger, wallet, owner) == FUNDS_MINOR - CAPTURED_MINOR + REFUND_MINOR
    assert await balance(direct.ledger, merchant, owner) == CAPTURED_MINOR - REFUND_MINOR

    # --- the customer sees the outcome and was told by SMS through the vault ---
    seen = (
        await app.risk.GetComplaint(
            pb.GetComplaintRequest(complaint_id=complaint.complaint_id), metadata=bearer(customer)
        )
    ).complaint
    assert seen.resolution.reason == reason
    assert seen.resolution.refund_amount == eur(REFUND_MINOR)
    outbox = real_stack.services.run_dir / "sms" / "outbox.jsonl"
    messages = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    to_customer = [m["body"] for m in messages if m["to"] == PHONE_E164]
    assert len(to_customer) == 1
    assert complaint.reference_number in to_customer[0]
    assert "upheld" in to_customer[0]
    assert reason in to_customer[0]
