"""WebAuthn passkeys against a real auth server (Postgres, Redis) and py_webauthn, with a software authenticator
built in the test: registration, passwordless sign-in (and its new-device event, once), step-up with a passkey,
and every refusal the issue lists — wrong origin, wrong RP id, no user verification, a replayed ceremony, a counter
that did not go up, malformed JSON — each audited and never a token."""

from __future__ import annotations

import json
import uuid

import grpc
import jwt
import pytest

from tests.integration.auth.conftest import RunningAuth, Tenant, bearer, error_of, sign_up
from tests.integration.auth.software_authenticator import SoftwareAuthenticator
from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2, auth_members_pb2, auth_passkeys_pb2, auth_sessions_pb2

pytestmark = pytest.mark.integration
RP_ID = "localhost"  # the defaults of AUTH_WEBAUTHN_RP_ID / AUTH_WEBAUTHN_ORIGINS
ORIGIN = "http://localhost:8080"


async def _register(
    auth: RunningAuth, access_token: str, authenticator: SoftwareAuthenticator
) -> auth_passkeys_pb2.Passkey:
    begun = await auth.stub.BeginPasskeyRegistration(
        auth_passkeys_pb2.BeginPasskeyRegistrationRequest(), metadata=bearer(access_token)
    )
    finished = await auth.stub.FinishPasskeyRegistration(
        auth_passkeys_pb2.FinishPasskeyRegistrationRequest(
            passkey_registration_id=begun.passkey_registration_id,
            credential_json=authenticator.register(begun.creation_options_json),
            display_name="iPhone passkey",
        ),
        metadata=bearer(access_token),
    )
    return finished.passkey


async def _begin(
    auth: RunningAuth, tenant: Tenant, login: str | None = None
) -> auth_passkeys_pb2.BeginPasskeyAuthenticationResponse:
    return await auth.stub.BeginPasskeyAuthentication(
        auth_passkeys_pb2.BeginPasskeyAuthenticationRequest(
            organization_slug=tenant.slug, login=tenant.owner_email if login is None else login
        )
    )


async def _finish(
    auth: RunningAuth, challenge_id: str, credential_json: str, device_id: str = ""
) -> auth_passkeys_pb2.FinishPasskeyAuthenticationResponse:
    return await auth.stub.FinishPasskeyAuthentication(
        auth_passkeys_pb2.FinishPasskeyAuthenticationRequest(
            assertion=auth_passkeys_pb2.PasskeyAssertion(
                passkey_challenge_id=challenge_id, credential_json=credential_json
            ),
            device_id=device_id,
        )
    )


async def _events(auth: RunningAuth, tenant: Tenant, event_type: int) -> list[dict[str, str]]:
    reply = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=event_type), metadata=bearer(tenant.access_token)
    )
    return [dict(event.details) for event in reply.audit_events]


async def _tenant_with_passkey(auth: RunningAuth) -> tuple[Tenant, SoftwareAuthenticator]:
    tenant = await sign_up(auth.stub)
    authenticator = SoftwareAuthenticator(rp_id=RP_ID, origin=ORIGIN)
    await _register(auth, tenant.access_token, authenticator)
    return tenant, authenticator


async def test_a_passkey_replaces_the_password_and_counts_as_mfa(auth: RunningAuth) -> None:
    tenant, authenticator = await _tenant_with_passkey(auth)
    listed = await auth.stub.ListPasskeys(
        auth_passkeys_pb2.ListPasskeysRequest(), metadata=bearer(tenant.access_token)
    )
    assert [(p.display_name, p.backup_eligible, p.backed_up) for p in listed.passkeys] == [
        ("iPhone passkey", True, True)
    ]
    device_id = f"install-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        begun = await _begin(auth, tenant)
        signed_in = await _finish(
            auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json), device_id
        )
        claims = jwt.decode(signed_in.tokens.access_token, options={"verify_signature": False})
        assert claims["sub"] == tenant.owner_id
        assert claims["acr"] == "mfa"
        assert set(claims["amr"]) == {"hwk", "user"}
    new_device = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_NEW_DEVICE_LOGIN)
    assert len(new_device) == 1  # the first sign-in from the installation only
    registered = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_MFA_CHANGED)
    assert [e["change"] for e in registered] == ["MFA_CHANGE_PASSKEY_REGISTERED"]


async def test_unknown_logins_get_the_same_kind_of_challenge(auth: RunningAuth) -> None:
    tenant, _ = await _tenant_with_passkey(auth)
    known = json.loads((await _begin(auth, tenant)).request_options_json)
    unknown = json.loads((await _begin(auth, tenant, login="nobody@example.com")).request_options_json)
    assert known.keys() == unknown.keys()
    assert known.get("allowCredentials", []) == unknown.get("allowCredentials", []) == []
    assert known["challenge"] != unknown["challenge"]


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        ("wrong_origin", "PASSKEY_ORIGIN_INVALID"),
        ("wrong_rp_id", "PASSKEY_ORIGIN_INVALID"),
        ("no_user_verification", "DEVICE_SIGNATURE_INVALID"),
        ("counter_stuck", "PASSKEY_COUNTER_INVALID"),
        ("counter_backwards", "PASSKEY_COUNTER_INVALID"),
        ("forged_with_old_counter", "DEVICE_SIGNATURE_INVALID"),
    ],
)
async def test_bad_assertions_are_refused_and_audited(auth: RunningAuth, misbehaviour: str, reason: str) -> None:
    tenant, authenticator = await _tenant_with_passkey(auth)
    if misbehaviour.startswith(("counter", "forged")):
        for _ in range(3):
            begun = await _begin(auth, tenant)
            await _finish(auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json))
    begun = await _begin(auth, tenant)
    if misbehaviour == "wrong_rp_id":
        authenticator.rp_id = "evil.example"
    if misbehaviour == "forged_with_old_counter":
        authenticator.key = SoftwareAuthenticator(rp_id=RP_ID, origin=ORIGIN).key  # not the registered key
    answer = authenticator.sign_in(
        begun.request_options_json,
        origin="https://evil.example" if misbehaviour == "wrong_origin" else None,
        user_verified=misbehaviour != "no_user_verification",
        count_up=misbehaviour != "counter_stuck",
        sign_count=1 if misbehaviour in ("counter_backwards", "forged_with_old_counter") else None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _finish(auth, begun.passkey_challenge_id, answer)
    details = error_of(raised)
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)
    failed = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_STEP_UP_FAILED)
    assert [(e["method"], e["reason"]) for e in failed] == [
        ("STEP_UP_METHOD_PASSKEY", f"{reason}:passkey_authentication")
    ]


async def test_a_ceremony_is_single_use(auth: RunningAuth) -> None:
    tenant, authenticator = await _tenant_with_passkey(auth)
    begun = await _begin(auth, tenant)
    answer = authenticator.sign_in(begun.request_options_json)
    await _finish(auth, begun.passkey_challenge_id, answer)
    with pytest.raises(grpc.aio.AioRpcError) as replayed:
        await _finish(auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json))
    assert error_of(replayed).reason == "DEVICE_SIGNATURE_INVALID"


async def test_registration_refuses_a_wrong_origin_and_malformed_json(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    authenticator = SoftwareAuthenticator(rp_id=RP_ID, origin=ORIGIN)
    begun = await auth.stub.BeginPasskeyRegistration(
        auth_passkeys_pb2.BeginPasskeyRegistrationRequest(), metadata=bearer(tenant.access_token)
    )
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await auth.stub.FinishPasskeyRegistration(
            auth_passkeys_pb2.FinishPasskeyRegistrationRequest(
                passkey_registration_id=begun.passkey_registration_id, credential_json="{not json"
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(malformed).code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as wrong_origin:
        await auth.stub.FinishPasskeyRegistration(
            auth_passkeys_pb2.FinishPasskeyRegistrationRequest(
                passkey_registration_id=begun.passkey_registration_id,
                credential_json=authenticator.register(begun.creation_options_json, origin="https://evil.example"),
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(wrong_origin).reason == "PASSKEY_ORIGIN_INVALID"
    listed = await auth.stub.ListPasskeys(
        auth_passkeys_pb2.ListPasskeysRequest(), metadata=bearer(tenant.access_token)
    )
    assert list(listed.passkeys) == []


async def test_step_up_with_a_passkey_and_deleting_it(auth: RunningAuth) -> None:
    tenant, authenticator = await _tenant_with_passkey(auth)
    begun = await _begin(auth, tenant)
    stepped_up = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(
            passkey=auth_passkeys_pb2.PasskeyAssertion(
                passkey_challenge_id=begun.passkey_challenge_id,
                credential_json=authenticator.sign_in(begun.request_options_json),
            )
        ),
        metadata=bearer(tenant.access_token),
    )
    assert stepped_up.step_up.acr == "mfa"
    assert {"pwd", "hwk", "user"} <= set(stepped_up.step_up.amr)
    # Someone else's passkey is no step-up for this principal.
    other_tenant, other_authenticator = await _tenant_with_passkey(auth)
    begun = await _begin(auth, other_tenant)
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await auth.stub.StepUp(
            auth_sessions_pb2.StepUpRequest(
                passkey=auth_passkeys_pb2.PasskeyAssertion(
                    passkey_challenge_id=begun.passkey_challenge_id,
                    credential_json=other_authenticator.sign_in(begun.request_options_json),
                )
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(foreign).reason == "DEVICE_SIGNATURE_INVALID"
    listed = await auth.stub.ListPasskeys(
        auth_passkeys_pb2.ListPasskeysRequest(), metadata=bearer(tenant.access_token)
    )
    delete = auth_passkeys_pb2.DeletePasskeyRequest(
        passkey_id=listed.passkeys[0].passkey_id, request_id=str(uuid.uuid4())
    )
    # DeletePasskey asks for a step-up (its policy): the passkey step-up token gives it.
    deleted = await auth.stub.DeletePasskey(delete, metadata=bearer(stepped_up.step_up.access_token))
    again = await auth.stub.DeletePasskey(delete, metadata=bearer(stepped_up.step_up.access_token))
    assert again.passkey.passkey_id == deleted.passkey.passkey_id
    begun = await _begin(auth, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await _finish(auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json))
    assert error_of(gone).reason == "DEVICE_SIGNATURE_INVALID"


async def test_a_second_factor_needs_mfa_to_add_a_passkey(auth: RunningAuth) -> None:
    tenant, _ = await _tenant_with_passkey(auth)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.BeginPasskeyRegistration(
            auth_passkeys_pb2.BeginPasskeyRegistrationRequest(), metadata=bearer(tenant.access_token)
        )
    assert error_of(raised).reason == "STEP_UP_REQUIRED"


@pytest.mark.parametrize(
    ("attestation", "reason"),
    [
        ("packed", None),  # self attestation: the statement's signature is verified with the credential key
        ("packed_bad", "DEVICE_ATTESTATION_INVALID"),
        ("none_with_statement", "DEVICE_ATTESTATION_INVALID"),
        ("garbage", "DEVICE_ATTESTATION_INVALID"),
    ],
)
async def test_attestation_statements_are_verified(auth: RunningAuth, attestation: str, reason: str | None) -> None:
    tenant = await sign_up(auth.stub)
    authenticator = SoftwareAuthenticator(rp_id=RP_ID, origin=ORIGIN)
    begun = await auth.stub.BeginPasskeyRegistration(
        auth_passkeys_pb2.BeginPasskeyRegistrationRequest(), metadata=bearer(tenant.access_token)
    )
    request = auth_passkeys_pb2.FinishPasskeyRegistrationRequest(
        passkey_registration_id=begun.passkey_registration_id,
        credential_json=authenticator.register(begun.creation_options_json, attestation=attestation),
    )
    if reason is None:
        finished = await auth.stub.FinishPasskeyRegistration(request, metadata=bearer(tenant.access_token))
        assert finished.passkey.passkey_id
        return
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.FinishPasskeyRegistration(request, metadata=bearer(tenant.access_token))
    details = error_of(raised)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert [v.field for v in details.field_violations] == ["credential_json"]
    failed = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_STEP_UP_FAILED)
    assert [e["reason"] for e in failed] == [f"{reason}:passkey_registration"]
    listed = await auth.stub.ListPasskeys(
        auth_passkeys_pb2.ListPasskeysRequest(), metadata=bearer(tenant.access_token)
    )
    assert list(listed.passkeys) == []


async def test_an_admin_reset_removes_the_members_passkeys_and_their_sessions(auth: RunningAuth) -> None:
    tenant, authenticator = await _tenant_with_passkey(auth)
    begun = await _begin(auth, tenant)
    passwordless = await _finish(auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json))
    begun = await _begin(auth, tenant)
    stepped_up = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(
            passkey=auth_passkeys_pb2.PasskeyAssertion(
                passkey_challenge_id=begun.passkey_challenge_id,
                credential_json=authenticator.sign_in(begun.request_options_json),
            )
        ),
        metadata=bearer(tenant.access_token),
    )
    request = auth_members_pb2.ResetMemberDevicesRequest(member_id=tenant.owner_id, request_id=str(uuid.uuid4()))
    reset = await auth.stub.ResetMemberDevices(request, metadata=bearer(stepped_up.step_up.access_token))
    assert (reset.revoked_device_count, reset.removed_passkey_count, reset.revoked_session_count) == (0, 1, 1)
    replay = await auth.stub.ResetMemberDevices(request, metadata=bearer(stepped_up.step_up.access_token))
    assert (replay.removed_passkey_count, replay.revoked_session_count) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as refresh:
        # The session the passkey opened (on the lost phone) is cut off at once; the password session lives on.
        await auth.stub.RefreshToken(
            auth_sessions_pb2.RefreshTokenRequest(refresh_token=passwordless.tokens.refresh_token)
        )
    assert error_of(refresh).reason == "REFRESH_TOKEN_INVALID"
    await auth.stub.RefreshToken(auth_sessions_pb2.RefreshTokenRequest(refresh_token=tenant.refresh_token))
    begun = await _begin(auth, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as removed:
        await _finish(auth, begun.passkey_challenge_id, authenticator.sign_in(begun.request_options_json))
    assert error_of(removed).reason == "DEVICE_SIGNATURE_INVALID"
    listed = await auth.stub.ListPasskeys(
        auth_passkeys_pb2.ListPasskeysRequest(), metadata=bearer(tenant.access_token)
    )
    assert list(listed.passkeys) == []
    changes = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_MFA_CHANGED)
    assert [(e["change"], e.get("actor_principal_id")) for e in changes if e["change"].endswith("REMOVED")] == [
        ("MFA_CHANGE_PASSKEY_REMOVED", tenant.owner_id)
    ]
    revoked = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_SESSION_REVOKED)
    assert [e["cause"] for e in revoked] == ["passkey_removed"]
