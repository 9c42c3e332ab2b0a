"""TOTP enrolment, MFA login, replayed codes, recovery codes, step-up, and the organization's MFA requirement."""

from __future__ import annotations

import time
import uuid

import grpc
import pyotp
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.kit.jwks import AuthServiceJwksSource
from services.kit.tokens import TokenVerifier
from tests.integration.auth.conftest import RunningAuth, bearer, error_of, login, sign_up
from wallet.auth.v1 import (
    auth_credentials_pb2,
    auth_members_pb2,
    auth_organizations_pb2,
    auth_sessions_pb2,
)

pytestmark = pytest.mark.integration
_used: dict[str, set[int]] = {}


def fresh_code(secret: str) -> str:
    """A valid code for a step later than any used before (the server refuses a step already used), taken from the
    server's drift window of one step either side of now."""
    used = _used.setdefault(secret, set())
    now_step = int(time.time() // 30)
    for step in (now_step - 1, now_step, now_step + 1):
        if all(step > other for other in used):
            used.add(step)
            return pyotp.TOTP(secret).at(step * 30)
    raise AssertionError("no unused TOTP step left in the drift window")


async def enrol_totp(auth: RunningAuth, access_token: str) -> str:
    enrolment = await auth.stub.EnrollTotp(auth_credentials_pb2.EnrollTotpRequest(), metadata=bearer(access_token))
    assert enrolment.provisioning_uri.startswith("otpauth://totp/")
    confirmed = await auth.stub.ConfirmTotp(
        auth_credentials_pb2.ConfirmTotpRequest(totp_code=fresh_code(enrolment.secret_base32)),
        metadata=bearer(access_token),
    )
    assert len(confirmed.recovery_codes) == 10
    _recovery[enrolment.secret_base32] = list(confirmed.recovery_codes)
    return enrolment.secret_base32


_recovery: dict[str, list[str]] = {}


async def test_mfa_login_with_totp_refuses_a_reused_code(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    secret = await enrol_totp(auth, tenant.access_token)
    first = await login(auth.stub, tenant.slug, tenant.owner_email)
    assert first.outcome == auth_sessions_pb2.LOGIN_OUTCOME_MFA_REQUIRED
    assert not first.HasField("tokens")
    code = fresh_code(secret)
    verified = await auth.stub.VerifyMfa(
        auth_sessions_pb2.VerifyMfaRequest(mfa_challenge_id=first.mfa_challenge.mfa_challenge_id, totp_code=code)
    )
    verifier = TokenVerifier(AuthServiceJwksSource(auth.address), audience="wallet", issuer="wallet-auth")
    principal = await verifier.verify(verified.tokens.access_token)
    assert principal.acr == "mfa"
    assert set(principal.amr) == {"pwd", "otp"}
    second = await login(auth.stub, tenant.slug, tenant.owner_email)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.VerifyMfa(
            auth_sessions_pb2.VerifyMfaRequest(mfa_challenge_id=second.mfa_challenge.mfa_challenge_id, totp_code=code)
        )
    assert error_of(raised).reason == "MFA_CODE_INVALID"
    # A used challenge is gone.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.VerifyMfa(
            auth_sessions_pb2.VerifyMfaRequest(
                mfa_challenge_id=first.mfa_challenge.mfa_challenge_id, totp_code=fresh_code(secret)
            )
        )
    assert error_of(raised).reason == "MFA_CHALLENGE_INVALID"


async def test_recovery_code_works_once(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    secret = await enrol_totp(auth, tenant.access_token)
    code = _recovery[secret][0]
    challenge = await login(auth.stub, tenant.slug, tenant.owner_email)
    verified = await auth.stub.VerifyMfa(
        auth_sessions_pb2.VerifyMfaRequest(
            mfa_challenge_id=challenge.mfa_challenge.mfa_challenge_id, recovery_code=code.upper()
        )
    )
    assert verified.recovery_codes_left == 9
    again = await login(auth.stub, tenant.slug, tenant.owner_email)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.VerifyMfa(
            auth_sessions_pb2.VerifyMfaRequest(
                mfa_challenge_id=again.mfa_challenge.mfa_challenge_id, recovery_code=code
            )
        )
    assert error_of(raised).reason == "MFA_CODE_INVALID"


async def test_step_up_gives_a_fresh_mfa_token_that_step_up_methods_accept(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    secret = await enrol_totp(auth, tenant.access_token)
    remove = auth_credentials_pb2.RemoveTotpRequest(request_id=str(uuid.uuid4()))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.RemoveTotp(remove, metadata=bearer(tenant.access_token))
    assert error_of(raised).reason == "STEP_UP_REQUIRED"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.StepUp(
            auth_sessions_pb2.StepUpRequest(totp_code="000000"), metadata=bearer(tenant.access_token)
        )
    assert error_of(raised).reason == "MFA_CODE_INVALID"
    reply = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(totp_code=fresh_code(secret)), metadata=bearer(tenant.access_token)
    )
    assert reply.step_up.acr == "mfa"
    assert reply.step_up.expires_at.seconds - time.time() <= 300
    await auth.stub.RemoveTotp(remove, metadata=bearer(reply.step_up.access_token))
    me = await auth.stub.GetCurrentPrincipal(
        auth_sessions_pb2.GetCurrentPrincipalRequest(), metadata=bearer(tenant.access_token)
    )
    assert not me.principal.totp_enrolled


async def test_mfa_required_forces_enrolment_at_next_login(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    owner_secret = await enrol_totp(auth, tenant.access_token)
    step_up = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(totp_code=fresh_code(owner_secret)), metadata=bearer(tenant.access_token)
    )
    await auth.stub.UpdateOrganizationPolicy(
        auth_organizations_pb2.UpdateOrganizationPolicyRequest(
            policy=auth_organizations_pb2.OrganizationPolicy(mfa_required=True),
            update_mask=FieldMask(paths=["mfa_required"]),
            request_id=str(uuid.uuid4()),
        ),
        metadata=bearer(step_up.step_up.access_token),
    )
    from tests.integration.auth.test_members_and_customers import MEMBER_PASSWORD, invite_and_accept

    _, email = await invite_and_accept(auth, tenant, [2])
    reply = await login(auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    assert reply.outcome == auth_sessions_pb2.LOGIN_OUTCOME_MFA_ENROLMENT_REQUIRED
    restricted = reply.tokens.access_token
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.ListMembers(auth_members_pb2.ListMembersRequest(), metadata=bearer(restricted))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    me = await auth.stub.GetCurrentPrincipal(
        auth_sessions_pb2.GetCurrentPrincipalRequest(), metadata=bearer(restricted)
    )
    assert not me.principal.totp_enrolled
    await enrol_totp(auth, restricted)
    refreshed = await auth.stub.RefreshToken(
        auth_sessions_pb2.RefreshTokenRequest(refresh_token=reply.tokens.refresh_token)
    )
    listed = await auth.stub.ListMembers(
        auth_members_pb2.ListMembersRequest(), metadata=bearer(refreshed.tokens.access_token)
    )
    assert len(listed.members) == 2
