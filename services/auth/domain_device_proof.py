"""Pure checks of a device registration beyond its fields: the proof that the caller holds the new key (a signature
over the registration payload) and, for Android, the key-attestation certificate chain — verified as far as it
can be without vendor roots (docs/decisions.md says what a production deployment adds). No I/O; the errors carry
the contract's specific reasons."""

from __future__ import annotations

import hashlib
import itertools

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from services.auth import limits
from services.auth.domain_devices import Device, load_public_key, signature_valid
from services.kit.errors import FieldViolation, InvalidArgument, Unauthenticated

REGISTRATION_PAYLOAD_TYPE = "wallet.auth.v1.device-registration"
REGISTRATION_PAYLOAD_VERSION = "v1"
PLATFORM_ANDROID = "android"
# Android Key Attestation's KeyDescription extension: present on the leaf of every attestation chain.
ANDROID_KEY_ATTESTATION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")
_DER_SEQUENCE = 0x30


class DeviceKeyInvalid(InvalidArgument):
    reason = "DEVICE_KEY_INVALID"


class DeviceKeyProofInvalid(Unauthenticated):
    reason = "DEVICE_KEY_PROOF_INVALID"

    def __init__(self) -> None:
        super().__init__("key_proof does not verify with public_key over the registration payload")


class DeviceAttestationInvalid(InvalidArgument):
    reason = "DEVICE_ATTESTATION_INVALID"

    def __init__(self, problem: str) -> None:
        super().__init__(f"attestation: {problem}", field_violations=[FieldViolation("attestation", problem)])


def registration_payload(*, organization_id: str, principal_id: str, device_id: str, public_key_der: bytes) -> bytes:
    """What the new key signs to prove possession: six ASCII lines (see ``RegisterDeviceRequest.key_proof``).
    Bound to the tenant, the principal, the device id and the key, so a proof made for one registration never
    verifies for another (and a replayed proof can only repeat the same registration, which is idempotent)."""
    lines = (
        REGISTRATION_PAYLOAD_TYPE,
        REGISTRATION_PAYLOAD_VERSION,
        organization_id,
        principal_id,
        device_id,
        hashlib.sha256(public_key_der).hexdigest(),
    )
    assert all("\n" not in line for line in lines)
    return "\n".join(lines).encode("ascii")


def check_key_proof(device: Device, key_proof: bytes) -> None:
    """Raises DeviceKeyProofInvalid unless ``key_proof`` is the device key's signature over its payload."""
    payload = registration_payload(
        organization_id=device.organization_id,
        principal_id=device.principal_id,
        device_id=device.device_id,
        public_key_der=device.public_key,
    )
    if not signature_valid(device, key_proof, payload):
        raise DeviceKeyProofInvalid()


def split_der_certificates(blob: bytes) -> list[bytes] | None:
    """Concatenated DER certificates → each one's bytes; None when the blob is not a sequence of DER SEQUENCEs."""
    certificates: list[bytes] = []
    offset = 0
    while offset < len(blob):
        if len(certificates) >= limits.DEVICE_ATTESTATION_CERTIFICATES_MAX or blob[offset] != _DER_SEQUENCE:
            return None
        if offset + 2 > len(blob):
            return None
        first = blob[offset + 1]
        header = 2
        length = first
        if first & 0x80:
            size = first & 0x7F
            if size == 0 or size > 3 or offset + 2 + size > len(blob):
                return None
            length = int.from_bytes(blob[offset + 2 : offset + 2 + size], "big")
            header += size
        end = offset + header + length
        if end > len(blob):
            return None
        certificates.append(blob[offset:end])
        offset = end
    return certificates


def check_attestation(device: Device, attestation: bytes) -> None:
    """An Android Key Attestation chain (concatenated DER, leaf first): the leaf certifies the registered key and
    carries the key-attestation extension, and each certificate is signed by the next. The root is not compared with
    Google's attestation roots and the KeyDescription (challenge, security level, boot state) is not parsed: that
    needs the vendor roots and an ASN.1 schema this service does not carry (docs/decisions.md). Raises
    DeviceAttestationInvalid when anything does not hold; an empty attestation is not checked."""
    if not attestation:
        return
    if device.platform != PLATFORM_ANDROID:
        raise DeviceAttestationInvalid("only an Android Key Attestation chain is understood (platform ANDROID)")
    if len(attestation) > limits.DEVICE_ATTESTATION_BYTES_MAX:
        raise DeviceAttestationInvalid(f"at most {limits.DEVICE_ATTESTATION_BYTES_MAX} bytes")
    parts = split_der_certificates(attestation)
    if parts is None or len(parts) < 2:
        raise DeviceAttestationInvalid("must be at least two concatenated DER X.509 certificates, leaf first")
    try:
        chain = [x509.load_der_x509_certificate(part) for part in parts]
    except ValueError:
        raise DeviceAttestationInvalid("a certificate does not parse") from None
    leaf = chain[0]
    try:
        leaf_key = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm):
        raise DeviceAttestationInvalid("the leaf's key does not parse") from None
    registered = load_public_key(device.key_algorithm, device.public_key)
    assert registered is not None, "the key was validated before the attestation"
    registered_der = registered.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if leaf_key != registered_der:
        raise DeviceAttestationInvalid("the leaf certificate attests another key than public_key")
    try:
        attested = any(extension.oid == ANDROID_KEY_ATTESTATION_OID for extension in leaf.extensions)
    except ValueError:
        raise DeviceAttestationInvalid("the leaf's extensions do not parse") from None
    if not attested:
        raise DeviceAttestationInvalid("the leaf has no key-attestation extension")
    for certificate, issuer in itertools.pairwise(chain):
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise DeviceAttestationInvalid("a certificate is not signed by the next one in the chain") from None
