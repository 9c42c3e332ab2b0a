"""Sign-up, login, token contents (verified by the kit's own verifier fed from GetJwks), password rules, and the
generic answer to wrong credentials."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import jwt
import pytest

from services.kit.jwks import AuthServiceJwksSource
from services.kit.tokens import TokenVerifier
from tests.integration.auth.conftest import OWNER_PASSWORD, RunningAuth, bearer, error_of, login, sign_up, unique_slug
from wallet.auth.v1 import auth_organizations_pb2, auth_sessions_pb2

pytestmark = pytest.mark.integration


async def test_sign_up_gives_tokens_the_kit_verifier_accepts(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    source = AuthServiceJwksSource(auth.address)
    verifier = TokenVerifier(source, audience="wallet", issuer="wallet-auth")
    try:
        principal = await verifier.verify(tenant.access_token)
    finally:
        await source.close()
    assert principal.subject == tenant.owner_id
    assert principal.organization_id == tenant.organization_id
    assert principal.kind == "member"
    assert principal.roles == frozenset({"owner"})
    assert principal.amr == ("pwd",)
    assert principal.acr == "pwd"
    assert principal.session_id is not None
    header = jwt.get_unverified_header(tenant.access_token)
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith("auth-")
    claims = jwt.decode(tenant.access_token, options={"verify_signature": False})
    assert claims["iss"] == "wallet-auth"
    assert claims["aud"] == "wallet"
    assert 300 <= claims["exp"] - claims["iat"] <= 900
    for name in ("sub", "org", "pty", "roles", "amr", "acr", "auth_time", "jti", "nbf"):
        assert name in claims


async def test_sign_up_replay_returns_the_organization_without_tokens(auth: RunningAuth) -> None:
    slug = unique_slug()
    request = auth_organizations_pb2.SignUpOrganizationRequest(
        organization_id=str(uuid.uuid4()),
        slug=slug,
        display_name="Replay Co",
        owner_email=f"o@{slug}.example.com",
        owner_display_name="O",
        owner_password=OWNER_PASSWORD,
    )
    first = await auth.stub.SignUpOrganization(request)
    again = await auth.stub.SignUpOrganization(request)
    assert again.owner_member_id == first.owner_member_id
    assert not again.HasField("tokens")
    request.display_name = "Other name"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.SignUpOrganization(request)
    assert error_of(raised).reason == "IDEMPOTENCY_KEY_REUSED"


async def test_slug_taken(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await sign_up(auth.stub, slug=tenant.slug)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_bad_sign_up_names_every_field_and_writes_nothing(auth: RunningAuth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.SignUpOrganization(
            auth_organizations_pb2.SignUpOrganizationRequest(
                organization_id="nope", slug="A!", owner_email="not-an-email", owner_password="short"
            )
        )
    details = error_of(raised)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {violation.field for violation in details.field_violations}
    assert fields == {
        "organization_id",
        "slug",
        "display_name",
        "owner_email",
        "owner_display_name",
        "owner_password",
    }


@pytest.mark.parametrize("password", ["short pw", "iloveyou", "qwerty123456", "LeaveMeAlone"])
async def test_weak_passwords_refused(auth: RunningAuth, password: str) -> None:
    slug = unique_slug()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.SignUpOrganization(
            auth_organizations_pb2.SignUpOrganizationRequest(
                organization_id=str(uuid.uuid4()),
                slug=slug,
                display_name="Weak",
                owner_email=f"o@{slug}.example.com",
                owner_display_name="O",
                owner_password=password,
            )
        )
    details = error_of(raised)
    assert details.reason == "PASSWORD_TOO_WEAK"
    assert [v.field for v in details.field_violations] == ["owner_password"] * len(details.field_violations)


async def test_login_and_generic_failures(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    reply = await login(auth.stub, tenant.slug, tenant.owner_email.upper())
    assert reply.outcome == auth_sessions_pb2.LOGIN_OUTCOME_AUTHENTICATED
    me = await auth.stub.GetCurrentPrincipal(
        auth_sessions_pb2.GetCurrentPrincipalRequest(), metadata=bearer(reply.tokens.access_token)
    )
    assert me.principal.principal_id == tenant.owner_id
    assert me.principal.organization_slug == tenant.slug
    failures = []
    for slug, email, password in (
        (tenant.slug, tenant.owner_email, "wrong password here"),
        (tenant.slug, "nobody@example.com", OWNER_PASSWORD),
        ("no-such-org", tenant.owner_email, OWNER_PASSWORD),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await login(auth.stub, slug, email, password)
        failures.append(error_of(raised))
    assert {(f.code, f.reason, f.message) for f in failures} == {
        (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS", "invalid login or password")
    }


async def test_first_login_from_a_device_is_an_event(auth: RunningAuth) -> None:
    from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2

    tenant = await sign_up(auth.stub)
    request = auth_sessions_pb2.LoginRequest(
        organization_slug=tenant.slug, login=tenant.owner_email, password=OWNER_PASSWORD, device_id="install-1"
    )
    first = await auth.stub.Login(request)
    await auth.stub.Login(request)
    claims = jwt.decode(first.tokens.access_token, options={"verify_signature": False})
    assert "did" not in claims  # an installation id alone is not a registered device (test_devices.py)
    events = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=auth_events_pb2.AUTH_EVENT_TYPE_NEW_DEVICE_LOGIN),
        metadata=bearer(tenant.access_token),
    )
    assert [event.details["session_id"] for event in events.audit_events] == [first.tokens.session_id]


async def test_concurrent_first_logins_from_one_device_raise_one_new_device_event(auth: RunningAuth) -> None:
    from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2

    tenant = await sign_up(auth.stub)
    request = auth_sessions_pb2.LoginRequest(
        organization_slug=tenant.slug, login=tenant.owner_email, password=OWNER_PASSWORD, device_id="install-2"
    )
    logins = await asyncio.gather(*(auth.stub.Login(request) for _ in range(4)))
    events = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=auth_events_pb2.AUTH_EVENT_TYPE_NEW_DEVICE_LOGIN),
        metadata=bearer(tenant.access_token),
    )
    assert len(events.audit_events) == 1
    assert events.audit_events[0].details["session_id"] in {login.tokens.session_id for login in logins}
