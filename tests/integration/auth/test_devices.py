"""Trusted devices and the biometric step-up, against a real auth server (Postgres, Redis), with device keys made in
the test (cryptography): registration, `did` on tokens, a signed challenge, replay and cross-operation refusal,
revocation cutting off refresh at once, an admin's reset, and the audit/events of each."""

from __future__ import annotations

import hashlib
import json
import uuid

import asyncpg
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kit.tokens import Principal, principal_from_claims
from tests.integration.auth.conftest import (
    OWNER_PASSWORD,
    RunningAuth,
    Tenant,
    bearer,
    error_of,
    sign_up,
)
from wallet.auth.v1 import (
    auth_audit_pb2,
    auth_devices_pb2,
    auth_events_pb2,
    auth_identity_pb2,
    auth_members_pb2,
    auth_sessions_pb2,
)
from wallet.common.v1 import money_pb2

pytestmark = pytest.mark.integration
APPROVE = "/wallet.ledger.v1.LedgerService/ApproveTransfer"
DeviceKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _der(key: DeviceKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign(key: DeviceKey, payload: bytes) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(payload)
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


async def _login_on(auth: RunningAuth, tenant: Tenant, device_id: str) -> auth_sessions_pb2.LoginResponse:
    return await auth.stub.Login(
        auth_sessions_pb2.LoginRequest(
            organization_slug=tenant.slug, login=tenant.owner_email, password=OWNER_PASSWORD, device_id=device_id
        )
    )


def registration_payload(access_token: str, device_id: str, public_key_der: bytes) -> bytes:
    """What the new key signs to prove possession, built as a client would (RegisterDeviceRequest.key_proof)."""
    claims = _claims(access_token)
    lines = [
        "wallet.auth.v1.device-registration",
        "v1",
        str(claims["org"]),
        str(claims["sub"]),
        device_id,
        hashlib.sha256(public_key_der).hexdigest(),
    ]
    return "\n".join(lines).encode("ascii")


async def _register(
    auth: RunningAuth, access_token: str, device_id: str, key: DeviceKey, **fields: object
) -> auth_devices_pb2.Device:
    algorithm = (
        auth_devices_pb2.DEVICE_KEY_ALGORITHM_ED25519
        if isinstance(key, Ed25519PrivateKey)
        else auth_devices_pb2.DEVICE_KEY_ALGORITHM_ECDSA_P256_SHA256
    )
    request = auth_devices_pb2.RegisterDeviceRequest(
        device_id=device_id,
        display_name="Ana's phone",
        platform=auth_devices_pb2.DEVICE_PLATFORM_IOS,
        model="iPhone15,2",
        app_version="3.1.0",
        key_algorithm=algorithm,
        public_key=_der(key),
        key_proof=_sign(key, registration_payload(access_token, device_id, _der(key))),
    )
    for name, value in fields.items():
        setattr(request, name, value)
    reply = await auth.stub.RegisterDevice(request, metadata=bearer(access_token))
    return reply.device


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _challenge(
    auth: RunningAuth,
    access_token: str,
    device_id: str,
    transfer_id: str,
    amount_minor: int = 125_000,
    method: str = APPROVE,
) -> auth_devices_pb2.CreateDeviceChallengeResponse:
    operation = auth_devices_pb2.DeviceOperation(
        method=method,
        resource_id=transfer_id,
        amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
    )
    return await auth.stub.CreateDeviceChallenge(
        auth_devices_pb2.CreateDeviceChallengeRequest(device_id=device_id, operation=operation),
        metadata=bearer(access_token),
    )


async def _step_up(
    auth: RunningAuth, access_token: str, challenge_id: str, signature: bytes
) -> auth_devices_pb2.StepUpWithDeviceResponse:
    return await auth.stub.StepUpWithDevice(
        auth_devices_pb2.StepUpWithDeviceRequest(
            device_challenge_id=challenge_id,
            signature=signature,
            user_verification=auth_devices_pb2.USER_VERIFICATION_BIOMETRIC,
        ),
        metadata=bearer(access_token),
    )


async def _device_setup(auth: RunningAuth, key: DeviceKey) -> tuple[Tenant, str, auth_sessions_pb2.LoginResponse]:
    """A tenant whose owner signed in on a phone (installation id = device id) and registered it."""
    tenant = await sign_up(auth.stub)
    device_id = str(uuid.uuid4())
    signed_in = await _login_on(auth, tenant, device_id)
    await _register(auth, signed_in.tokens.access_token, device_id, key)
    return tenant, device_id, signed_in


async def _events(auth: RunningAuth, tenant: Tenant, event_type: int) -> list[dict[str, str]]:
    reply = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=event_type), metadata=bearer(tenant.access_token)
    )
    return [dict(event.details) for event in reply.audit_events]


async def test_registration_lists_the_device_and_tokens_carry_did_once_registered(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    device_id = str(uuid.uuid4())
    signed_in = await _login_on(auth, tenant, device_id)
    assert "did" not in _claims(signed_in.tokens.access_token)  # an installation id alone is not a trusted device
    device = await _register(auth, signed_in.tokens.access_token, device_id, Ed25519PrivateKey.generate())
    assert device.status == auth_devices_pb2.DEVICE_STATUS_ACTIVE
    assert device.platform == auth_devices_pb2.DEVICE_PLATFORM_IOS
    refreshed = await auth.stub.RefreshToken(
        auth_sessions_pb2.RefreshTokenRequest(refresh_token=signed_in.tokens.refresh_token)
    )
    assert _claims(refreshed.tokens.access_token)["did"] == device_id
    listed = await auth.stub.ListDevices(auth_devices_pb2.ListDevicesRequest(), metadata=bearer(tenant.access_token))
    assert [d.device_id for d in listed.devices] == [device_id]
    registered = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_DEVICE_REGISTERED)
    assert [e["device_id"] for e in registered] == [device_id]


async def test_registration_is_idempotent_and_refuses_bad_keys(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    key, device_id = ec.generate_private_key(ec.SECP256R1()), str(uuid.uuid4())
    first = await _register(auth, tenant.access_token, device_id, key)
    again = await _register(auth, tenant.access_token, device_id, key)
    assert again == first
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await _register(auth, tenant.access_token, device_id, Ed25519PrivateKey.generate())
    assert error_of(reused).reason == "IDEMPOTENCY_KEY_REUSED"
    p384 = ec.generate_private_key(ec.SECP384R1())
    for bad_key in (b"not a key", _der(p384), _der(Ed25519PrivateKey.generate())):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _register(
                auth,
                tenant.access_token,
                str(uuid.uuid4()),
                key,
                public_key=bad_key,
            )
        details = error_of(raised)
        assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DEVICE_KEY_INVALID")
        assert [v.field for v in details.field_violations] == ["public_key"]
    refused = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_DEVICE_REGISTRATION_REFUSED)
    assert [e["reason"] for e in refused] == ["DEVICE_KEY_INVALID"] * 3


async def test_signed_challenge_gives_a_step_up_bound_to_the_operation(auth: RunningAuth) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    tenant, device_id, signed_in = await _device_setup(auth, key)
    access = signed_in.tokens.access_token
    transfer_id = str(uuid.uuid4())
    challenge = await _challenge(auth, access, device_id, transfer_id)
    payload = json.loads(challenge.signing_payload)
    assert payload["operation"] == {
        "method": APPROVE,
        "resource_id": transfer_id,
        "amount": {"currency": "EUR", "amount_minor": "125000"},
    }
    assert payload["device_id"] == device_id
    reply = await _step_up(auth, access, challenge.device_challenge_id, _sign(key, challenge.signing_payload))
    step_up = reply.step_up
    assert step_up.acr == "mfa"
    assert {"hwk", "bio"} <= set(step_up.amr)
    assert (step_up.bound_method, step_up.bound_resource_id) == (APPROVE, transfer_id)
    principal: Principal = principal_from_claims(_claims(step_up.access_token))
    now_s = float(principal.auth_time)
    assert principal.device_id == device_id
    assert principal.has_fresh_step_up_for(APPROVE, transfer_id, now_s)
    assert not principal.has_fresh_step_up_for(APPROVE, str(uuid.uuid4()), now_s)
    assert not principal.has_fresh_step_up_for("/wallet.ledger.v1.LedgerService/RevealCard", transfer_id, now_s)
    assert not principal.has_fresh_step_up(now_s)  # a guard that does not name its method refuses it
    # The amount the user saw is bound too: a guard that knows the operation's amount checks it.
    assert (principal.bound_currency, principal.bound_amount_minor) == ("EUR", 125_000)
    assert principal.has_fresh_step_up_for(APPROVE, transfer_id, now_s, amount=("EUR", 125_000))
    assert not principal.has_fresh_step_up_for(APPROVE, transfer_id, now_s, amount=("EUR", 125_001))
    assert not principal.has_fresh_step_up_for(APPROVE, transfer_id, now_s, amount=("USD", 125_000))
    succeeded = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_STEP_UP_SUCCEEDED)
    assert [(e["method"], e["bound_resource_id"]) for e in succeeded] == [("STEP_UP_METHOD_DEVICE", transfer_id)]


async def test_replayed_and_cross_operation_signatures_are_refused_and_audited(auth: RunningAuth) -> None:
    key = Ed25519PrivateKey.generate()
    tenant, device_id, signed_in = await _device_setup(auth, key)
    access = signed_in.tokens.access_token
    for_a = await _challenge(auth, access, device_id, str(uuid.uuid4()), amount_minor=500)
    for_b = await _challenge(auth, access, device_id, str(uuid.uuid4()), amount_minor=990_000)
    signature_a = _sign(key, for_a.signing_payload)
    with pytest.raises(grpc.aio.AioRpcError) as crossed:
        await _step_up(auth, access, for_b.device_challenge_id, signature_a)  # A's approval used for B
    assert error_of(crossed).reason == "DEVICE_SIGNATURE_INVALID"
    assert error_of(crossed).code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as burnt:
        # The failed attempt burnt B's challenge: even a right signature cannot use it now.
        await _step_up(auth, access, for_b.device_challenge_id, _sign(key, for_b.signing_payload))
    assert error_of(burnt).reason == "DEVICE_SIGNATURE_INVALID"
    await _step_up(auth, access, for_a.device_challenge_id, signature_a)
    with pytest.raises(grpc.aio.AioRpcError) as replayed:
        await _step_up(auth, access, for_a.device_challenge_id, signature_a)
    assert error_of(replayed).reason == "DEVICE_SIGNATURE_INVALID"
    failed = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_STEP_UP_FAILED)
    assert [e["reason"] for e in failed] == ["DEVICE_SIGNATURE_INVALID"] * 3


async def test_expired_and_foreign_challenges_are_refused(auth: RunningAuth) -> None:
    key = Ed25519PrivateKey.generate()
    _, device_id, signed_in = await _device_setup(auth, key)
    access = signed_in.tokens.access_token
    challenge = await _challenge(auth, access, device_id, str(uuid.uuid4()))
    other_tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await _step_up(
            auth, other_tenant.access_token, challenge.device_challenge_id, _sign(key, challenge.signing_payload)
        )
    assert error_of(foreign).reason == "DEVICE_SIGNATURE_INVALID"
    auth.clock.advance(61)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await _step_up(auth, access, challenge.device_challenge_id, _sign(key, challenge.signing_payload))
        assert error_of(expired).reason == "DEVICE_SIGNATURE_INVALID"
    finally:
        auth.clock.offset_s = 0.0


async def test_challenges_need_an_active_own_device_and_a_declared_method(auth: RunningAuth) -> None:
    _, device_id, signed_in = await _device_setup(auth, Ed25519PrivateKey.generate())
    access = signed_in.tokens.access_token
    # The risk gate's CHALLENGE on an ordinary transfer is a step-up too: CreateTransfer can be approved.
    create_transfer = auth_devices_pb2.DeviceOperation(
        method="/wallet.ledger.v1.LedgerService/CreateTransfer", resource_id=str(uuid.uuid4())
    )
    await auth.stub.CreateDeviceChallenge(
        auth_devices_pb2.CreateDeviceChallengeRequest(device_id=device_id, operation=create_transfer),
        metadata=bearer(access),
    )
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await _challenge(auth, access, str(uuid.uuid4()), str(uuid.uuid4()))
    assert error_of(unknown).reason == "DEVICE_INVALID"
    bad = auth_devices_pb2.DeviceOperation(
        method="/wallet.ledger.v1.LedgerService/NoSuchMethod",  # not in the contract: nothing to approve
        resource_id="",
        amount=money_pb2.Money(currency="eur", amount_minor=-1),
    )
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await auth.stub.CreateDeviceChallenge(
            auth_devices_pb2.CreateDeviceChallengeRequest(device_id=device_id, operation=bad), metadata=bearer(access)
        )
    assert {v.field for v in error_of(invalid).field_violations} == {
        "operation.method",
        "operation.resource_id",
        "operation.amount.currency",
        "operation.amount.amount_minor",
    }


async def test_revoking_a_device_stops_its_refresh_tokens_at_once(auth: RunningAuth) -> None:
    key = Ed25519PrivateKey.generate()
    tenant, device_id, signed_in = await _device_setup(auth, key)
    other_device_session = await _login_on(auth, tenant, "laptop-browser")
    challenge = await _challenge(auth, signed_in.tokens.access_token, device_id, str(uuid.uuid4()))
    revoked = await auth.stub.RevokeDevice(
        auth_devices_pb2.RevokeDeviceRequest(device_id=device_id, request_id=str(uuid.uuid4())),
        metadata=bearer(tenant.access_token),
    )
    assert revoked.device.status == auth_devices_pb2.DEVICE_STATUS_REVOKED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await auth.stub.RefreshToken(
            auth_sessions_pb2.RefreshTokenRequest(refresh_token=signed_in.tokens.refresh_token)
        )
    assert error_of(refused).reason == "REFRESH_TOKEN_INVALID"
    # Other sessions live on, and the revoked device can no longer approve anything.
    await auth.stub.RefreshToken(
        auth_sessions_pb2.RefreshTokenRequest(refresh_token=other_device_session.tokens.refresh_token)
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await _step_up(
            auth, tenant.access_token, challenge.device_challenge_id, _sign(key, challenge.signing_payload)
        )
    assert error_of(stale).reason == "DEVICE_SIGNATURE_INVALID"
    # Signing in again from that installation works, but it is not a trusted device any more.
    again = await _login_on(auth, tenant, device_id)
    assert "did" not in _claims(again.tokens.access_token)
    await auth.stub.RefreshToken(auth_sessions_pb2.RefreshTokenRequest(refresh_token=again.tokens.refresh_token))
    revocations = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_DEVICE_REVOKED)
    assert [e["device_id"] for e in revocations] == [device_id]


async def test_a_second_device_needs_a_session_that_proved_mfa(auth: RunningAuth) -> None:
    _, _, signed_in = await _device_setup(auth, Ed25519PrivateKey.generate())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _register(auth, signed_in.tokens.access_token, str(uuid.uuid4()), Ed25519PrivateKey.generate())
    assert error_of(raised).reason == "STEP_UP_REQUIRED"


async def test_admin_reset_revokes_every_device_of_the_member(auth: RunningAuth) -> None:
    from tests.integration.auth.test_mfa import enrol_totp, fresh_code

    tenant = await sign_up(auth.stub)
    phone, tablet = str(uuid.uuid4()), str(uuid.uuid4())
    phone_session = await _login_on(auth, tenant, phone)
    phone_key = Ed25519PrivateKey.generate()
    await _register(auth, phone_session.tokens.access_token, phone, phone_key)
    challenge = await _challenge(auth, phone_session.tokens.access_token, phone, str(uuid.uuid4()))
    bound = await _step_up(
        auth,
        phone_session.tokens.access_token,
        challenge.device_challenge_id,
        _sign(phone_key, challenge.signing_payload),
    )
    with pytest.raises(grpc.aio.AioRpcError) as bound_refused:
        # A step-up bound to one payment is not a general proof of MFA.
        await _register(auth, bound.step_up.access_token, tablet, Ed25519PrivateKey.generate())
    assert error_of(bound_refused).reason == "STEP_UP_REQUIRED"
    secret = await enrol_totp(auth, tenant.access_token)
    stepped_up = await auth.stub.StepUp(
        auth_sessions_pb2.StepUpRequest(totp_code=fresh_code(secret)), metadata=bearer(tenant.access_token)
    )
    admin_token = stepped_up.step_up.access_token
    await _register(auth, admin_token, tablet, Ed25519PrivateKey.generate())
    request = auth_members_pb2.ResetMemberDevicesRequest(member_id=tenant.owner_id, request_id=str(uuid.uuid4()))
    with pytest.raises(grpc.aio.AioRpcError) as needs_step_up:
        await auth.stub.ResetMemberDevices(request, metadata=bearer(tenant.access_token))
    assert error_of(needs_step_up).reason == "STEP_UP_REQUIRED"
    reset = await auth.stub.ResetMemberDevices(request, metadata=bearer(admin_token))
    assert reset.revoked_device_count == 2
    replay = await auth.stub.ResetMemberDevices(request, metadata=bearer(admin_token))
    assert replay.revoked_device_count == 0
    listed = await auth.stub.ListDevices(
        auth_devices_pb2.ListDevicesRequest(include_revoked=True), metadata=bearer(tenant.access_token)
    )
    assert {d.status for d in listed.devices} == {auth_devices_pb2.DEVICE_STATUS_REVOKED}
    revocations = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_DEVICE_REVOKED)
    assert sorted(e["device_id"] for e in revocations) == sorted([phone, tablet])
    assert {e["reset_by_admin"] for e in revocations} == {"True"}


async def test_a_phone_step_up_passes_the_interceptor_for_its_own_operation_only(auth: RunningAuth) -> None:
    """The kit's step-up check accepts a bound token for the method it names, on the resource the request's first
    field names (here ResetMemberDevices of one member), and nothing else."""
    tenant = await sign_up(auth.stub)
    phone = str(uuid.uuid4())
    session = await _login_on(auth, tenant, phone)
    key = Ed25519PrivateKey.generate()
    await _register(auth, session.tokens.access_token, phone, key)
    reset = "/wallet.auth.v1.AuthService/ResetMemberDevices"
    challenge = await _challenge(auth, session.tokens.access_token, phone, tenant.owner_id, method=reset)
    bound = await _step_up(
        auth, session.tokens.access_token, challenge.device_challenge_id, _sign(key, challenge.signing_payload)
    )
    token = bound.step_up.access_token
    other_member = auth_members_pb2.ResetMemberDevicesRequest(
        member_id=str(uuid.uuid4()), request_id=str(uuid.uuid4())
    )
    with pytest.raises(grpc.aio.AioRpcError) as wrong_resource:
        await auth.stub.ResetMemberDevices(other_member, metadata=bearer(token))
    assert error_of(wrong_resource).reason == "STEP_UP_REQUIRED"
    with pytest.raises(grpc.aio.AioRpcError) as wrong_method:
        # Same member, another step-up method: not what the phone approved.
        await auth.stub.UpdateMemberRoles(
            auth_members_pb2.UpdateMemberRolesRequest(
                member_id=tenant.owner_id, roles=[auth_identity_pb2.ROLE_OWNER], request_id=str(uuid.uuid4())
            ),
            metadata=bearer(token),
        )
    assert error_of(wrong_method).reason == "STEP_UP_REQUIRED"
    done = await auth.stub.ResetMemberDevices(
        auth_members_pb2.ResetMemberDevicesRequest(member_id=tenant.owner_id, request_id=str(uuid.uuid4())),
        metadata=bearer(token),
    )
    assert done.revoked_device_count == 1


async def test_rename_and_paging(auth: RunningAuth) -> None:
    tenant, device_id, _ = await _device_setup(auth, Ed25519PrivateKey.generate())
    request_id = str(uuid.uuid4())
    renamed = await auth.stub.RenameDevice(
        auth_devices_pb2.RenameDeviceRequest(device_id=device_id, display_name="Work phone", request_id=request_id),
        metadata=bearer(tenant.access_token),
    )
    assert renamed.device.display_name == "Work phone"
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await auth.stub.RenameDevice(
            auth_devices_pb2.RenameDeviceRequest(device_id=device_id, display_name="Other", request_id=request_id),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(reused).reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await auth.stub.RenameDevice(
            auth_devices_pb2.RenameDeviceRequest(
                device_id=str(uuid.uuid4()), display_name="x", request_id=str(uuid.uuid4())
            ),
            metadata=bearer(tenant.access_token),
        )
    assert error_of(missing).code == grpc.StatusCode.NOT_FOUND
    page = await auth.stub.ListDevices(
        auth_devices_pb2.ListDevicesRequest(page_size=1), metadata=bearer(tenant.access_token)
    )
    assert len(page.devices) == 1
    assert page.next_page_token == ""


async def test_long_expired_challenges_are_swept_by_later_ones(auth: RunningAuth) -> None:
    _, device_id, signed_in = await _device_setup(auth, Ed25519PrivateKey.generate())
    access = signed_in.tokens.access_token
    old = await _challenge(auth, access, device_id, str(uuid.uuid4()))
    auth.clock.advance(60 + 3600 + 1)  # past its expiry and the hour expired challenges are kept
    connection = await asyncpg.connect(auth.database_url)
    try:
        # Every challenge made so far expires within a minute of real time; the sweep takes those an hour expired
        # by the moved clock.
        swept_before = "SELECT count(*) FROM device_challenges WHERE expires_at < now() + interval '600 seconds'"
        expired_before = await connection.fetchval(swept_before)
        try:
            new = await _challenge(auth, access, device_id, str(uuid.uuid4()))
        finally:
            auth.clock.offset_s = 0.0
        expired_after = await connection.fetchval(swept_before)
        left = {
            row["id"]
            for row in await connection.fetch("SELECT device_challenge_id::text AS id FROM device_challenges")
        }
    finally:
        await connection.close()
    assert expired_before >= 1
    assert expired_after == max(0, expired_before - 20)  # oldest first, 20 per insert
    assert new.device_challenge_id in left
    if expired_before <= 20:
        assert old.device_challenge_id not in left
