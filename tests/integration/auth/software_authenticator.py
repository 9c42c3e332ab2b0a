"""A software WebAuthn authenticator for the tests: a P-256 key made with cryptography, attestation `none`, and
assertions signed over authenticatorData + SHA-256(clientDataJSON) exactly as a platform authenticator does. It can
also misbehave on purpose (another origin, no user verification, a counter that does not go up)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
FLAG_BACKUP_ELIGIBLE = 0x08
FLAG_BACKED_UP = 0x10
FLAG_ATTESTED_DATA = 0x40
COSE_KEY_TYPE_EC2, COSE_ALG_ES256, COSE_CURVE_P256 = 2, -7, 1


@dataclass
class SoftwareAuthenticator:
    rp_id: str
    origin: str
    synced: bool = True  # a passkey provider that backs keys up (backup eligible + backed up)
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0
    user_handle: bytes = b""

    def _flags(self, user_verified: bool) -> int:
        flags = FLAG_USER_PRESENT | (FLAG_USER_VERIFIED if user_verified else 0)
        if self.synced:
            flags |= FLAG_BACKUP_ELIGIBLE | FLAG_BACKED_UP
        return flags

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return bytes(
            encode_cbor(
                {
                    1: COSE_KEY_TYPE_EC2,
                    3: COSE_ALG_ES256,
                    -1: COSE_CURVE_P256,
                    -2: numbers.x.to_bytes(32, "big"),
                    -3: numbers.y.to_bytes(32, "big"),
                }
            )
        )

    def _client_data(self, kind: str, challenge_b64: str, origin: str | None) -> bytes:
        body = {"type": kind, "challenge": challenge_b64, "origin": origin or self.origin, "crossOrigin": False}
        return json.dumps(body).encode()

    def _attestation_object(self, attestation: str, auth_data: bytes, client_data: bytes) -> bytes:
        """``none``; ``packed`` self attestation (signed by the credential key over authData + clientDataHash);
        ``packed_bad`` (signed over other bytes); ``none_with_statement`` (a none format carrying a statement);
        ``garbage`` (not CBOR)."""
        if attestation == "garbage":
            return b"\xff\x00not cbor"
        if attestation == "none_with_statement":
            return bytes(encode_cbor({"fmt": "none", "attStmt": {"sig": b"\x01"}, "authData": auth_data}))
        if attestation in ("packed", "packed_bad"):
            signed = auth_data + hashlib.sha256(client_data).digest()
            if attestation == "packed_bad":
                signed = b"other bytes" + signed
            signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
            statement = {"alg": COSE_ALG_ES256, "sig": signature}
            return bytes(encode_cbor({"fmt": "packed", "attStmt": statement, "authData": auth_data}))
        assert attestation == "none"
        return bytes(encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data}))

    def register(
        self,
        creation_options_json: str,
        *,
        origin: str | None = None,
        user_verified: bool = True,
        attestation: str = "none",
    ) -> str:
        """A RegistrationResponseJSON answering ``navigator.credentials.create()`` options."""
        options = json.loads(creation_options_json)
        assert options["rp"]["id"] == self.rp_id
        assert options["authenticatorSelection"]["userVerification"] == "required"
        self.user_handle = base64url_to_bytes(options["user"]["id"])
        attested = b"\x00" * 16 + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags(user_verified) | FLAG_ATTESTED_DATA])
            + struct.pack(">I", self.sign_count)
            + attested
            + self._cose_public_key()
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation_object = self._attestation_object(attestation, auth_data, client_data)
        return json.dumps(
            {
                "id": bytes_to_base64url(self.credential_id),
                "rawId": bytes_to_base64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "attestationObject": bytes_to_base64url(attestation_object),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def sign_in(
        self,
        request_options_json: str,
        *,
        origin: str | None = None,
        user_verified: bool = True,
        count_up: bool = True,
        sign_count: int | None = None,
    ) -> str:
        """An AuthenticationResponseJSON answering ``navigator.credentials.get()`` options; ``sign_count`` sets
        the counter (e.g. back to an earlier value, as a cloned authenticator would)."""
        options = json.loads(request_options_json)
        assert options["userVerification"] == "required"
        if sign_count is not None:
            self.sign_count = sign_count
        elif count_up:
            self.sign_count += 1
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags(user_verified)])
            + struct.pack(">I", self.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": bytes_to_base64url(self.credential_id),
                "rawId": bytes_to_base64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": bytes_to_base64url(client_data),
                    "authenticatorData": bytes_to_base64url(auth_data),
                    "signature": bytes_to_base64url(signature),
                    "userHandle": bytes_to_base64url(self.user_handle),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )
