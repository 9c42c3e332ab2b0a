"""Members (invite, accept, roles, disable/enable), customers (created or self signed-up), tenancy isolation."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.kit.testing import SigningKey
from tests.integration.auth.conftest import (
    OWNER_PASSWORD,
    RunningAuth,
    Tenant,
    bearer,
    error_of,
    login,
    sign_up,
)
from wallet.auth.v1 import (
    auth_customers_pb2,
    auth_identity_pb2,
    auth_members_pb2,
    auth_organizations_pb2,
    auth_sessions_pb2,
)

pytestmark = pytest.mark.integration
MEMBER_PASSWORD = "a long and unusual passphrase 7"


async def invite_and_accept(
    auth: RunningAuth, tenant: Tenant, roles: list[int], email: str | None = None
) -> tuple[str, str]:
    member_id = str(uuid.uuid4())
    email = email or f"m-{member_id[:8]}@example.com"
    invited = await auth.stub.InviteMember(
        auth_members_pb2.InviteMemberRequest(member_id=member_id, email=email, display_name="Mia", roles=roles),
        metadata=bearer(tenant.access_token),
    )
    assert invited.member.status == auth_identity_pb2.PRINCIPAL_STATUS_INVITED
    accepted = await auth.stub.AcceptInvitation(
        auth_members_pb2.AcceptInvitationRequest(
            invitation_token=invited.invitation.invitation_token, password=MEMBER_PASSWORD
        )
    )
    assert accepted.principal_id == member_id
    return member_id, email


async def test_invite_accept_login_and_single_use_invitation(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    member_id = str(uuid.uuid4())
    request = auth_members_pb2.InviteMemberRequest(
        member_id=member_id, email="fin@example.com", display_name="Fin", roles=[auth_identity_pb2.ROLE_FINANCE]
    )
    invited = await auth.stub.InviteMember(request, metadata=bearer(tenant.access_token))
    replay = await auth.stub.InviteMember(request, metadata=bearer(tenant.access_token))
    assert replay.invitation.invitation_token == ""
    accept = auth_members_pb2.AcceptInvitationRequest(
        invitation_token=invited.invitation.invitation_token, password=MEMBER_PASSWORD
    )
    await auth.stub.AcceptInvitation(accept)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.AcceptInvitation(accept)
    assert error_of(raised).reason == "INVITATION_INVALID"
    reply = await login(auth.stub, tenant.slug, "fin@example.com", MEMBER_PASSWORD)
    assert reply.outcome == auth_sessions_pb2.LOGIN_OUTCOME_AUTHENTICATED
    listed = await auth.stub.ListMembers(
        auth_members_pb2.ListMembersRequest(page_size=1), metadata=bearer(tenant.access_token)
    )
    assert len(listed.members) == 1
    assert listed.next_page_token
    rest = await auth.stub.ListMembers(
        auth_members_pb2.ListMembersRequest(page_size=1, page_token=listed.next_page_token),
        metadata=bearer(tenant.access_token),
    )
    assert {listed.members[0].email, rest.members[0].email} == {tenant.owner_email, "fin@example.com"}


async def test_duplicate_email_refused(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.InviteMember(
            auth_members_pb2.InviteMemberRequest(
                member_id=str(uuid.uuid4()),
                email=tenant.owner_email,
                display_name="Dup",
                roles=[auth_identity_pb2.ROLE_ADMIN],
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(raised).reason == "IDENTITY_ALREADY_EXISTS"


async def test_role_change_takes_effect_on_next_token(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    member_id, email = await invite_and_accept(auth, tenant, [auth_identity_pb2.ROLE_AUDITOR])
    session = await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.InviteMember(
            auth_members_pb2.InviteMemberRequest(
                member_id=str(uuid.uuid4()), email="x@example.com", display_name="X", roles=[2]
            ),
            metadata=bearer(session.tokens.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await auth.stub.UpdateMemberRoles(
        auth_members_pb2.UpdateMemberRolesRequest(
            member_id=member_id, roles=[auth_identity_pb2.ROLE_ADMIN], request_id=str(uuid.uuid4())
        ),
        metadata=bearer(await step_up_owner(auth, tenant)),
    )
    refreshed = await auth.stub.RefreshToken(
        auth_sessions_pb2.RefreshTokenRequest(refresh_token=session.tokens.refresh_token)
    )
    await auth.stub.InviteMember(
        auth_members_pb2.InviteMemberRequest(
            member_id=str(uuid.uuid4()),
            email="x@example.com",
            display_name="X",
            roles=[auth_identity_pb2.ROLE_SUPPORT],
        ),
        metadata=bearer(refreshed.tokens.access_token),
    )


async def step_up_owner(auth: RunningAuth, tenant: Tenant) -> str:
    """UpdateMemberRoles needs a step-up; tests mint the owner a step-up token with the kit's signing helper
    registered in auth's JWKS would be a fake, so the owner enrols TOTP and steps up for real."""
    from tests.integration.auth.test_mfa import enrol_totp, fresh_code

    secret = await enrol_totp(auth, tenant.access_token)
    reply = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(totp_code=fresh_code(secret)), metadata=bearer(tenant.access_token)
    )
    return reply.step_up.access_token


async def test_disable_blocks_login_and_revokes_sessions_enable_restores(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    member_id, email = await invite_and_accept(auth, tenant, [auth_identity_pb2.ROLE_FINANCE])
    session = await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    await auth.stub.DisableMember(
        auth_members_pb2.DisableMemberRequest(member_id=member_id, request_id=str(uuid.uuid4())),
        metadata=bearer(tenant.access_token),
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    assert error_of(raised).reason == "PRINCIPAL_DISABLED"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.RefreshToken(
            auth_sessions_pb2.RefreshTokenRequest(refresh_token=session.tokens.refresh_token)
        )
    assert error_of(raised).reason == "REFRESH_TOKEN_INVALID"
    await auth.stub.EnableMember(
        auth_members_pb2.EnableMemberRequest(member_id=member_id, request_id=str(uuid.uuid4())),
        metadata=bearer(tenant.access_token),
    )
    assert (await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)).tokens.access_token


async def test_last_owner_cannot_be_disabled(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.DisableMember(
            auth_members_pb2.DisableMemberRequest(member_id=tenant.owner_id, request_id=str(uuid.uuid4())),
            metadata=bearer(tenant.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_another_tenants_members_and_customers_are_not_found(auth: RunningAuth) -> None:
    first, second = await sign_up(auth.stub), await sign_up(auth.stub)
    customer_id = str(uuid.uuid4())
    await auth.stub.CreateCustomer(
        auth_customers_pb2.CreateCustomerRequest(customer_id=customer_id, email="c@example.com", display_name="C"),
        metadata=bearer(first.access_token),
    )
    calls = [
        auth.stub.GetMember(
            auth_members_pb2.GetMemberRequest(member_id=first.owner_id), metadata=bearer(second.access_token)
        ),
        auth.stub.GetCustomer(
            auth_customers_pb2.GetCustomerRequest(customer_id=customer_id), metadata=bearer(second.access_token)
        ),
        auth.stub.DisableCustomer(
            auth_customers_pb2.DisableCustomerRequest(customer_id=customer_id, request_id=str(uuid.uuid4())),
            metadata=bearer(second.access_token),
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    # A customer is not a member either.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.GetMember(
            auth_members_pb2.GetMemberRequest(member_id=customer_id), metadata=bearer(first.access_token)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_forged_token_refused(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    forged = SigningKey(kid="auth-forged").mint(sub=tenant.owner_id, org=tenant.organization_id)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.ListMembers(auth_members_pb2.ListMembersRequest(), metadata=bearer(forged))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_customer_self_sign_up_only_where_allowed(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    request = auth_customers_pb2.SignUpCustomerRequest(
        customer_id=str(uuid.uuid4()),
        organization_slug=tenant.slug,
        email="self@example.com",
        display_name="Self",
        password=OWNER_PASSWORD,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.SignUpCustomer(request)
    assert error_of(raised).reason == "SIGN_UP_NOT_ALLOWED"
    step_up = await step_up_owner(auth, tenant)
    await auth.stub.UpdateOrganizationPolicy(
        auth_organizations_pb2.UpdateOrganizationPolicyRequest(
            policy=auth_organizations_pb2.OrganizationPolicy(customer_self_sign_up=True),
            update_mask=FieldMask(paths=["customer_self_sign_up"]),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(step_up),
    )
    reply = await auth.stub.SignUpCustomer(request)
    assert reply.customer.status == auth_identity_pb2.PRINCIPAL_STATUS_ACTIVE
    me = await auth.stub.GetCurrentPrincipal(
        auth_sessions_pb2.GetCurrentPrincipalRequest(), metadata=bearer(reply.tokens.access_token)
    )
    assert list(me.principal.roles) == [auth_identity_pb2.ROLE_CUSTOMER]
    listed = await auth.stub.ListCustomers(
        auth_customers_pb2.ListCustomersRequest(email="SELF@example.com"), metadata=bearer(tenant.access_token)
    )
    assert [c.customer_id for c in listed.customers] == [request.customer_id]
