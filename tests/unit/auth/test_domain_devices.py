"""Pure device rules: key parsing per algorithm, the canonical signing payload, signature checks, amr."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth import domain_devices as d
from services.auth import limits

NONCE = bytes(range(limits.DEVICE_CHALLENGE_NONCE_BYTES))


def _der(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _device(key_algorithm: str, public_key: bytes) -> d.Device:
    return d.Device("p", "o", "dev", "name", "ios", "m", "1", key_algorithm, public_key, d.STATUS_ACTIVE, 0, 0, None)


def _payload(operation: d.DeviceOperation) -> bytes:
    return d.signing_payload(
        device_challenge_id="c",
        nonce=NONCE,
        organization_id="o",
        principal_id="p",
        device_id="dev",
        operation=operation,
        expires_at_s=100,
    )


def test_keys_load_only_for_their_declared_algorithm() -> None:
    ed, p256, p384 = (
        Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
    )
    assert d.load_public_key(d.KEY_ALGORITHM_ED25519, _der(ed)) is not None
    assert d.load_public_key(d.KEY_ALGORITHM_ECDSA_P256, _der(p256)) is not None
    assert d.load_public_key(d.KEY_ALGORITHM_ECDSA_P256, _der(ed)) is None
    assert d.load_public_key(d.KEY_ALGORITHM_ED25519, _der(p256)) is None
    assert d.load_public_key(d.KEY_ALGORITHM_ECDSA_P256, _der(p384)) is None
    assert d.load_public_key(d.KEY_ALGORITHM_ED25519, b"") is None
    assert d.load_public_key(d.KEY_ALGORITHM_ED25519, b"\x30" * (limits.DEVICE_PUBLIC_KEY_BYTES_MAX + 1)) is None


def test_payload_is_canonical_and_names_the_operation() -> None:
    operation = d.DeviceOperation("/wallet.ledger.v1.LedgerService/ApproveTransfer", "t-1", "EUR", 1250)
    payload = _payload(operation)
    body = json.loads(payload)
    assert payload == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert body["operation"]["amount"] == {"currency": "EUR", "amount_minor": "1250"}
    assert _payload(d.DeviceOperation(operation.method, "t-2", "EUR", 1250)) != payload
    assert _payload(d.DeviceOperation(operation.method, "t-1", "EUR", 1251)) != payload
    assert json.loads(_payload(d.DeviceOperation(operation.method, "t-1")))["operation"]["amount"] is None


@pytest.mark.parametrize("algorithm", [d.KEY_ALGORITHM_ED25519, d.KEY_ALGORITHM_ECDSA_P256])
def test_signature_verifies_only_over_its_own_payload(algorithm: str) -> None:
    key = (
        Ed25519PrivateKey.generate()
        if algorithm == d.KEY_ALGORITHM_ED25519
        else ec.generate_private_key(ec.SECP256R1())
    )
    device = _device(algorithm, _der(key))
    mine = _payload(d.DeviceOperation("/m/M", "a"))
    other = _payload(d.DeviceOperation("/m/M", "b"))
    signature = key.sign(mine) if isinstance(key, Ed25519PrivateKey) else key.sign(mine, ec.ECDSA(hashes.SHA256()))
    assert d.signature_valid(device, signature, mine)
    assert not d.signature_valid(device, signature, other)
    assert not d.signature_valid(device, b"", mine)
    assert not d.signature_valid(device, b"\x00" * (limits.DEVICE_SIGNATURE_BYTES_MAX + 1), mine)
    assert not d.signature_valid(device, b"garbage", mine)


def test_operation_rules() -> None:
    good = d.DeviceOperation("/wallet.ledger.v1.LedgerService/ApproveTransfer", "t", "EUR", 1)
    assert d.operation_violations(good, method_can_be_approved=True) == []
    fields = {v.field for v in d.operation_violations(good, method_can_be_approved=False)}
    assert fields == {"operation.method"}
    bad = d.DeviceOperation("", " ", "eur", 0)
    fields = {v.field for v in d.operation_violations(bad, method_can_be_approved=False)}
    assert fields == {
        "operation.method",
        "operation.resource_id",
        "operation.amount.currency",
        "operation.amount.amount_minor",
    }


def test_amr_adds_the_hardware_key_and_the_unlock_once() -> None:
    assert d.step_up_amr(("pwd",), d.USER_VERIFICATION_BIOMETRIC) == ("pwd", "hwk", "bio")
    assert d.step_up_amr(("pwd", "hwk"), d.USER_VERIFICATION_PASSCODE) == ("pwd", "hwk", "pin")


def test_a_challenge_is_usable_once_and_until_it_expires() -> None:
    challenge = d.DeviceChallenge("c", "o", "p", "dev", None, d.DeviceOperation("/m/M", "a"), b"x", 100.0, None)
    assert challenge.usable(99.0)
    assert not challenge.usable(100.0)
    used = d.DeviceChallenge("c", "o", "p", "dev", None, d.DeviceOperation("/m/M", "a"), b"x", 100.0, 50.0)
    assert not used.usable(60.0)
