"""RegisterDevice's proof of possession and Android key attestation, against a real auth server: a key the caller
does not hold, a signature over another registration, a missing proof, and attestation chains made in the test
(cryptography) — good, attesting another key, not signed by the next certificate, garbage, on the wrong platform.
Each refusal has its own reason and an audited DeviceRegistrationRefused, and registers nothing."""

from __future__ import annotations

import datetime
import uuid

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from tests.integration.auth.conftest import RunningAuth, Tenant, bearer, error_of, sign_up
from tests.integration.auth.test_devices import _der, _events, _register, _sign, registration_payload
from wallet.auth.v1 import auth_devices_pb2, auth_events_pb2

pytestmark = pytest.mark.integration
KEY_ATTESTATION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")


def _certificate(
    subject_key: ec.EllipticCurvePublicKey | Ed25519PrivateKey | object,
    issuer_key: ec.EllipticCurvePrivateKey,
    name: str,
    issuer_name: str,
    *,
    attestation_extension: bool,
) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(subject_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    if attestation_extension:
        # The KeyDescription's content is not parsed by the server (see docs/decisions.md); any DER will do here.
        builder = builder.add_extension(x509.UnrecognizedExtension(KEY_ATTESTATION_OID, b"\x30\x00"), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _chain(device_key: ec.EllipticCurvePrivateKey, *, leaf_signer: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """leaf (the device key, signed by the intermediate) + intermediate (signed by the root) + root, as DER."""
    root = ec.generate_private_key(ec.SECP256R1())
    intermediate = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(
        device_key.public_key(),
        leaf_signer or intermediate,
        "Android Keystore Key",
        "intermediate",
        attestation_extension=True,
    )
    middle = _certificate(intermediate.public_key(), root, "intermediate", "root", attestation_extension=False)
    top = _certificate(root.public_key(), root, "root", "root", attestation_extension=False)
    return leaf + middle + top


async def _register_android(
    auth: RunningAuth, tenant: Tenant, key: ec.EllipticCurvePrivateKey, attestation: bytes, **fields: object
) -> auth_devices_pb2.Device:
    return await _register(
        auth,
        tenant.access_token,
        str(uuid.uuid4()),
        key,
        platform=auth_devices_pb2.DEVICE_PLATFORM_ANDROID,
        model="Pixel 8",
        attestation=attestation,
        **fields,
    )


async def _refusals(auth: RunningAuth, tenant: Tenant) -> list[str]:
    refused = await _events(auth, tenant, auth_events_pb2.AUTH_EVENT_TYPE_DEVICE_REGISTRATION_REFUSED)
    return [event["reason"] for event in refused]


async def _device_count(auth: RunningAuth, tenant: Tenant) -> int:
    listed = await auth.stub.ListDevices(
        auth_devices_pb2.ListDevicesRequest(include_revoked=True), metadata=bearer(tenant.access_token)
    )
    return len(listed.devices)


async def test_a_key_the_caller_does_not_hold_is_refused_and_audited(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    victim_key, attacker_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    device_id = str(uuid.uuid4())
    # The caller names someone else's public key and signs with its own key.
    foreign_proof = attacker_key.sign(registration_payload(tenant.access_token, device_id, _der(victim_key)))
    # A real signature by the key, but over another registration (another device id).
    other_payload = registration_payload(tenant.access_token, str(uuid.uuid4()), _der(victim_key))
    for proof in (foreign_proof, victim_key.sign(other_payload), b"\x00" * 64):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _register(auth, tenant.access_token, device_id, victim_key, key_proof=proof)
        details = error_of(raised)
        assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "DEVICE_KEY_PROOF_INVALID")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await _register(auth, tenant.access_token, device_id, victim_key, key_proof=b"")
    assert error_of(missing).code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error_of(missing).field_violations] == ["key_proof"]
    assert await _refusals(auth, tenant) == ["DEVICE_KEY_PROOF_INVALID"] * 3
    assert await _device_count(auth, tenant) == 0
    # The same key with its own proof registers.
    registered = await _register(auth, tenant.access_token, device_id, victim_key)
    assert registered.status == auth_devices_pb2.DEVICE_STATUS_ACTIVE


async def test_a_proof_for_another_principal_is_refused(auth: RunningAuth) -> None:
    tenant, other = await sign_up(auth.stub), await sign_up(auth.stub)
    key, device_id = ec.generate_private_key(ec.SECP256R1()), str(uuid.uuid4())
    proof_for_other = _sign(key, registration_payload(other.access_token, device_id, _der(key)))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _register(auth, tenant.access_token, device_id, key, key_proof=proof_for_other)
    assert error_of(raised).reason == "DEVICE_KEY_PROOF_INVALID"


async def test_an_android_key_attestation_chain_is_checked(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    key = ec.generate_private_key(ec.SECP256R1())
    registered = await _register_android(auth, tenant, key, _chain(key))
    assert registered.platform == auth_devices_pb2.DEVICE_PLATFORM_ANDROID
    stranger = ec.generate_private_key(ec.SECP256R1())

    def lone_certificate(device_key: ec.EllipticCurvePrivateKey) -> bytes:
        return _certificate(device_key.public_key(), stranger, "leaf", "x", attestation_extension=True)

    bad_chains = {
        "attests another key": lambda _: _chain(ec.generate_private_key(ec.SECP256R1())),
        "leaf not signed by the next certificate": lambda device_key: _chain(device_key, leaf_signer=stranger),
        "garbage": lambda _: b"\x30\x82\x01\x00not a certificate",
        "a lone certificate": lone_certificate,
    }
    for problem, make_chain in bad_chains.items():
        device_key = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _register_android(auth, tenant, device_key, make_chain(device_key))
        details = error_of(raised)
        assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DEVICE_ATTESTATION_INVALID"), (
            problem
        )
        assert [v.field for v in details.field_violations] == ["attestation"]
    with pytest.raises(grpc.aio.AioRpcError) as not_android:
        # An attestation this service cannot check on this platform is refused, not silently accepted.
        await _register(auth, tenant.access_token, str(uuid.uuid4()), key, attestation=_chain(key))
    assert error_of(not_android).reason == "DEVICE_ATTESTATION_INVALID"
    assert await _refusals(auth, tenant) == ["DEVICE_ATTESTATION_INVALID"] * 5
    assert await _device_count(auth, tenant) == 1
