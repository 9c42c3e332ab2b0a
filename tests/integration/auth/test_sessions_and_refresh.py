"""Refresh-token rotation (10 concurrent refreshes inside the grace window, reuse after it), logout, sessions,
password change, and introspection honouring revocation."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from tests.integration.auth.conftest import OWNER_PASSWORD, RunningAuth, bearer, error_of, login, sign_up
from wallet.auth.v1 import auth_audit_pb2, auth_credentials_pb2, auth_events_pb2, auth_keys_pb2, auth_sessions_pb2

pytestmark = pytest.mark.integration
CONCURRENT_REFRESHES = 10


async def refresh(auth: RunningAuth, token: str) -> auth_sessions_pb2.RefreshTokenResponse:
    return await auth.stub.RefreshToken(auth_sessions_pb2.RefreshTokenRequest(refresh_token=token))


async def test_concurrent_refreshes_inside_the_grace_window_share_one_successor(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    replies = await asyncio.gather(*(refresh(auth, tenant.refresh_token) for _ in range(CONCURRENT_REFRESHES)))
    successors = {reply.tokens.refresh_token for reply in replies}
    assert len(successors) == 1
    assert successors != {tenant.refresh_token}
    # The successor works, and rotates in turn.
    next_reply = await refresh(auth, successors.pop())
    assert next_reply.tokens.refresh_token not in {tenant.refresh_token}


async def test_reuse_after_the_grace_window_revokes_the_family(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    successor = (await refresh(auth, tenant.refresh_token)).tokens.refresh_token
    auth.clock.advance(31)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await refresh(auth, tenant.refresh_token)
        assert error_of(raised).reason == "REFRESH_TOKEN_REUSED"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await refresh(auth, successor)
        assert error_of(raised).reason == "REFRESH_TOKEN_INVALID"
    finally:
        auth.clock.advance(-31)
    events = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=auth_events_pb2.AUTH_EVENT_TYPE_REFRESH_TOKEN_REUSED),
        metadata=bearer(tenant.access_token),
    )
    assert [event.principal_id for event in events.audit_events] == [tenant.owner_id]


async def test_reuse_of_a_token_whose_successor_was_used_revokes_even_inside_the_window(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    successor = (await refresh(auth, tenant.refresh_token)).tokens.refresh_token
    await refresh(auth, successor)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await refresh(auth, tenant.refresh_token)
    assert error_of(raised).reason == "REFRESH_TOKEN_REUSED"


async def test_logout_revokes_the_session_and_introspection_sees_it(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    platform_token = await platform_introspector(auth)
    introspect = auth_keys_pb2.IntrospectTokenRequest(token=tenant.access_token)
    active = await auth.stub.IntrospectToken(introspect, metadata=bearer(platform_token))
    assert active.active
    assert active.claims.principal_id == tenant.owner_id
    issued_s, expires_s = active.claims.issued_at.seconds, active.claims.expires_at.seconds
    assert issued_s > 0
    assert 300 <= expires_s - issued_s <= 900  # the configured access-token lifetime
    await auth.stub.Logout(auth_sessions_pb2.LogoutRequest(), metadata=bearer(tenant.access_token))
    assert not (await auth.stub.IntrospectToken(introspect, metadata=bearer(platform_token))).active
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await refresh(auth, tenant.refresh_token)
    assert error_of(raised).reason == "REFRESH_TOKEN_INVALID"
    garbage = auth_keys_pb2.IntrospectTokenRequest(token="not.a.token")
    assert not (await auth.stub.IntrospectToken(garbage, metadata=bearer(platform_token))).active


async def test_introspection_honours_a_disabled_principal(auth: RunningAuth) -> None:
    from tests.integration.auth.test_members_and_customers import MEMBER_PASSWORD, invite_and_accept
    from wallet.auth.v1 import auth_members_pb2

    tenant = await sign_up(auth.stub)
    member_id, email = await invite_and_accept(auth, tenant, [3])
    member = await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    platform_token = await platform_introspector(auth)
    introspect = auth_keys_pb2.IntrospectTokenRequest(token=member.tokens.access_token)
    assert (await auth.stub.IntrospectToken(introspect, metadata=bearer(platform_token))).active
    await auth.stub.DisableMember(
        auth_members_pb2.DisableMemberRequest(member_id=member_id, request_id=str(uuid.uuid4())),
        metadata=bearer(tenant.access_token),
    )
    assert not (await auth.stub.IntrospectToken(introspect, metadata=bearer(platform_token))).active


async def platform_introspector(auth: RunningAuth) -> str:
    from services.auth.bootstrap import bootstrap_platform_client

    client_id, secret, _ = await bootstrap_platform_client(
        auth.app.store,
        f"introspector-{uuid.uuid4().hex[:6]}",
        ["auth.tokens.read", "auth.keys.admin", "auth.keys.read"],
    )
    reply = await auth.stub.IssueServiceToken(
        auth_keys_pb2.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
    )
    return reply.access_token


async def test_list_and_revoke_sessions_and_other_principals_sessions_are_not_found(auth: RunningAuth) -> None:
    tenant, other = await sign_up(auth.stub), await sign_up(auth.stub)
    second = await login(auth.stub, tenant.slug, tenant.owner_email)
    listed = await auth.stub.ListSessions(
        auth_sessions_pb2.ListSessionsRequest(), metadata=bearer(tenant.access_token)
    )
    assert len(listed.sessions) == 2
    assert sum(session.current for session in listed.sessions) == 1
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.RevokeSession(
            auth_sessions_pb2.RevokeSessionRequest(session_id=second.tokens.session_id, request_id=str(uuid.uuid4())),
            metadata=bearer(other.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    revoked = await auth.stub.RevokeSession(
        auth_sessions_pb2.RevokeSessionRequest(session_id=second.tokens.session_id, request_id=str(uuid.uuid4())),
        metadata=bearer(tenant.access_token),
    )
    assert revoked.session.session_id == second.tokens.session_id
    with pytest.raises(grpc.aio.AioRpcError):
        await refresh(auth, second.tokens.refresh_token)


async def test_password_change_revokes_the_other_sessions(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    other = await login(auth.stub, tenant.slug, tenant.owner_email)
    new_password = "an entirely different passphrase 9"
    request = auth_credentials_pb2.ChangePasswordRequest(
        current_password=OWNER_PASSWORD, new_password=new_password, request_id=str(uuid.uuid4())
    )
    reply = await auth.stub.ChangePassword(request, metadata=bearer(tenant.access_token))
    assert reply.revoked_session_count == 1
    # A retry with the same request id succeeds although the current password changed.
    await auth.stub.ChangePassword(request, metadata=bearer(tenant.access_token))
    with pytest.raises(grpc.aio.AioRpcError):
        await refresh(auth, other.tokens.refresh_token)
    await refresh(auth, tenant.refresh_token)
    assert (await login(auth.stub, tenant.slug, tenant.owner_email, new_password)).tokens.access_token
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.ChangePassword(
            auth_credentials_pb2.ChangePasswordRequest(
                current_password=new_password, new_password="password1", request_id=str(uuid.uuid4())
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(raised).reason == "PASSWORD_TOO_WEAK"
