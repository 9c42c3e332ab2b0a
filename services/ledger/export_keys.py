"""Keys of compliance exports: the keyed pseudonyms (HMAC-SHA-256, hex) that replace identifiers, where each export's
key comes from, and the sealed keyset cursor of its page tokens.

- ``LEDGER_EXPORT_PSEUDONYM_KEY`` (or ``_FILE``): the server-side secret. An export without a key name gets
  ``HMAC(secret, "wallet.ledger.export.v1|per-export|<org>|<export id>")`` — a fresh key nobody can recompute
  without the secret, so its pseudonyms link to no other export. The secret also seals page-token cursors.
- ``LEDGER_EXPORT_KEY_NAMES=aml_2026,quarterly`` and per name ``LEDGER_EXPORT_KEY_<NAME>`` (or ``_FILE``): named
  keys, chosen on purpose to link exports. The key of an export is ``HMAC(named key,
  "wallet.ledger.export.v1|named|<org>")``, so one configured name never links two tenants.

A pseudonym is ``hex(HMAC-SHA-256(export key, str(uuid)))``. A cursor names a transfer by its raw id, which the
auditor must not learn (it would tie the page's last pseudonym to an id): it travels AES-256-GCM-sealed, bound to
the tenant and the export.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.kit.config import ConfigError, Env, decode_key
from services.ledger import limits

SERVER_KEY_SETTING = "LEDGER_EXPORT_PSEUDONYM_KEY"
KEY_NAMES_SETTING = "LEDGER_EXPORT_KEY_NAMES"
NAMED_KEY_SETTING_PREFIX = "LEDGER_EXPORT_KEY_"
KEY_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
DERIVATION_LABEL = b"wallet.ledger.export.v1"
CURSOR_NONCE_BYTES = 12


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def per_export_key(server_secret: bytes, organization_id: uuid.UUID, export_id: uuid.UUID) -> bytes:
    """The key of an export made without a key name: only the holder of the server secret can recompute it."""
    return _hmac(server_secret, b"|".join((DERIVATION_LABEL, b"per-export", organization_id.bytes, export_id.bytes)))


def named_export_key(named_key: bytes, organization_id: uuid.UUID) -> bytes:
    """The key of an export made with a configured key name: the same for every export of the tenant with it."""
    return _hmac(named_key, b"|".join((DERIVATION_LABEL, b"named", organization_id.bytes)))


def pseudonym(export_key: bytes, identifier: uuid.UUID | None) -> str:
    """Keyed pseudonym of an identifier (64 hex digits); empty for no identifier."""
    if identifier is None:
        return ""
    return hmac.new(export_key, str(identifier).encode(), hashlib.sha256).hexdigest()


def named_key_setting(name: str) -> str:
    return NAMED_KEY_SETTING_PREFIX + name.upper()


@dataclass(frozen=True, slots=True)
class ExportKeys:
    """The server secret and the named keys. ``repr`` never shows key material."""

    server_secret: bytes = field(repr=False)
    named_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        assert len(self.server_secret) >= 32
        assert len(self.named_keys) <= limits.EXPORT_KEY_NAMES_MAX

    def export_key(self, organization_id: uuid.UUID, export_id: uuid.UUID, key_name: str) -> bytes | None:
        """The export's key; None when ``key_name`` is not configured (the caller refuses the request)."""
        if key_name == "":
            return per_export_key(self.server_secret, organization_id, export_id)
        named = self.named_keys.get(key_name)
        return None if named is None else named_export_key(named, organization_id)

    def _cursor_cipher(self) -> AESGCM:
        return AESGCM(_hmac(self.server_secret, DERIVATION_LABEL + b"|cursor"))

    def seal_cursor(self, plaintext: bytes, binding: bytes, nonce: bytes) -> str:
        assert len(nonce) == CURSOR_NONCE_BYTES
        sealed = nonce + self._cursor_cipher().encrypt(nonce, plaintext, binding)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open_cursor(self, sealed: str, binding: bytes) -> bytes | None:
        """The cursor's plaintext; None when it was not sealed here for this binding (tenant and export)."""
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= CURSOR_NONCE_BYTES:
            return None
        try:
            return self._cursor_cipher().decrypt(raw[:CURSOR_NONCE_BYTES], raw[CURSOR_NONCE_BYTES:], binding)
        except InvalidTag:
            return None


def load_export_keys(env: Env) -> ExportKeys | None:
    """The export keys from the environment; None without ``LEDGER_EXPORT_PSEUDONYM_KEY`` (exports UNAVAILABLE)."""
    raw_secret = env.secret(SERVER_KEY_SETTING, required=False)
    names_setting = env.optional_string(KEY_NAMES_SETTING)
    if raw_secret is None:
        if names_setting is not None:
            raise ConfigError(f"{KEY_NAMES_SETTING} is set but {SERVER_KEY_SETTING} (or _FILE) is not")
        return None
    names = [name.strip() for name in (names_setting or "").split(",") if name.strip()]
    if len(names) > limits.EXPORT_KEY_NAMES_MAX:
        raise ConfigError(f"{KEY_NAMES_SETTING} names more than {limits.EXPORT_KEY_NAMES_MAX} keys")
    named: dict[str, bytes] = {}
    for name in names:
        if len(name) > limits.EXPORT_KEY_NAME_CHARS_MAX or not KEY_NAME_PATTERN.match(name):
            raise ConfigError(
                f"{KEY_NAMES_SETTING}: {name!r} must be lower-case letters, digits and _, "
                f"at most {limits.EXPORT_KEY_NAME_CHARS_MAX} characters"
            )
        setting = named_key_setting(name)
        raw = env.secret(setting)
        assert raw is not None
        named[name] = decode_key(raw, setting)
    return ExportKeys(decode_key(raw_secret, SERVER_KEY_SETTING), named)
