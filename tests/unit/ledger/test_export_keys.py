"""services/ledger/export_keys.py: keyed pseudonyms (checked against HMAC-SHA-256 computed by hand from its RFC 2104
definition), where an export's key comes from, the sealed cursor, and loading the keys from the environment."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from services.kit.config import ConfigError, Env
from services.ledger.export_keys import (
    CURSOR_NONCE_BYTES,
    ExportKeys,
    load_export_keys,
    named_export_key,
    per_export_key,
    pseudonym,
)

SECRET = bytes(range(32))
NAMED = bytes(range(100, 132))
ORG = uuid.UUID("0190c3e1-0000-7000-8000-000000000001")
OTHER_ORG = uuid.UUID("0190c3e1-0000-7000-8000-000000000002")
ACCOUNT = uuid.UUID("0190c3e1-1111-7000-8000-00000000abcd")
EXPORT_A = uuid.UUID("0190c3e1-2222-7000-8000-000000000001")
EXPORT_B = uuid.UUID("0190c3e1-2222-7000-8000-000000000002")
BLOCK_BYTES = 64


def hmac_sha256_by_hand(key: bytes, message: bytes) -> bytes:
    """RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)), with K zero-padded to the block size."""
    assert len(key) <= BLOCK_BYTES
    padded = key.ljust(BLOCK_BYTES, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in padded) + inner).digest()


def test_hand_hmac_matches_rfc_4231_test_case_2() -> None:
    digest = hmac_sha256_by_hand(b"Jefe", b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_pseudonym_is_hex_hmac_sha256_of_the_canonical_uuid() -> None:
    key = named_export_key(NAMED, ORG)
    assert key == hmac_sha256_by_hand(NAMED, b"wallet.ledger.export.v1|named|" + ORG.bytes)
    expected = hmac_sha256_by_hand(key, b"0190c3e1-1111-7000-8000-00000000abcd").hex()
    assert pseudonym(key, ACCOUNT) == expected
    assert len(expected) == 64


def test_per_export_key_is_derived_from_the_server_secret_and_the_export() -> None:
    key = per_export_key(SECRET, ORG, EXPORT_A)
    assert key == hmac_sha256_by_hand(
        SECRET, b"wallet.ledger.export.v1|per-export|" + ORG.bytes + b"|" + EXPORT_A.bytes
    )
    assert per_export_key(bytes(32), ORG, EXPORT_A) != key


def test_no_identifier_has_an_empty_pseudonym() -> None:
    assert pseudonym(SECRET, None) == ""


def key_of(keys: ExportKeys, organization_id: uuid.UUID, export_id: uuid.UUID, key_name: str) -> bytes:
    key = keys.export_key(organization_id, export_id, key_name)
    assert key is not None
    return key


def test_stable_within_an_export_and_unlinkable_across_exports_without_a_key_name() -> None:
    keys = ExportKeys(SECRET, {"quarterly": NAMED})
    first = key_of(keys, ORG, EXPORT_A, "")
    again = key_of(keys, ORG, EXPORT_A, "")
    other = key_of(keys, ORG, EXPORT_B, "")
    assert pseudonym(first, ACCOUNT) == pseudonym(again, ACCOUNT)
    assert pseudonym(first, ACCOUNT) != pseudonym(other, ACCOUNT)


def test_the_same_key_name_links_exports_of_one_tenant_only() -> None:
    keys = ExportKeys(SECRET, {"quarterly": NAMED})
    first = key_of(keys, ORG, EXPORT_A, "quarterly")
    second = key_of(keys, ORG, EXPORT_B, "quarterly")
    elsewhere = key_of(keys, OTHER_ORG, EXPORT_A, "quarterly")
    unnamed = key_of(keys, ORG, EXPORT_A, "")
    assert pseudonym(first, ACCOUNT) == pseudonym(second, ACCOUNT)
    assert pseudonym(first, ACCOUNT) != pseudonym(elsewhere, ACCOUNT)
    assert pseudonym(first, ACCOUNT) != pseudonym(unnamed, ACCOUNT)


def test_an_unconfigured_key_name_has_no_key() -> None:
    assert ExportKeys(SECRET, {"quarterly": NAMED}).export_key(ORG, EXPORT_A, "annual") is None


def test_key_material_never_shows_in_repr() -> None:
    shown = repr(ExportKeys(SECRET, {"quarterly": NAMED}))
    assert SECRET.hex() not in shown
    assert str(SECRET) not in shown
    assert str(NAMED) not in shown


def test_a_sealed_cursor_opens_only_under_its_binding() -> None:
    keys = ExportKeys(SECRET)
    sealed = keys.seal_cursor(b'["2026-01-01", "id"]', b"binding-a", bytes(CURSOR_NONCE_BYTES))
    assert b"id" not in sealed.encode()
    assert keys.open_cursor(sealed, b"binding-a") == b'["2026-01-01", "id"]'
    assert keys.open_cursor(sealed, b"binding-b") is None
    assert ExportKeys(bytes(32)).open_cursor(sealed, b"binding-a") is None
    middle = len(sealed) // 2
    tampered = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    assert keys.open_cursor(tampered, b"binding-a") is None
    assert keys.open_cursor("!!not base64!!", b"binding-a") is None
    assert keys.open_cursor("", b"binding-a") is None


def test_loading_keys_from_the_environment_and_files(tmp_path: Path) -> None:
    named_file = tmp_path / "quarterly"
    named_file.write_text(NAMED.hex() + "\n")
    keys = load_export_keys(
        Env(
            {
                "LEDGER_EXPORT_PSEUDONYM_KEY": SECRET.hex(),
                "LEDGER_EXPORT_KEY_NAMES": "quarterly, aml_2026",
                "LEDGER_EXPORT_KEY_QUARTERLY_FILE": str(named_file),
                "LEDGER_EXPORT_KEY_AML_2026": "A" * 43,
            }
        )
    )
    assert keys is not None
    assert keys.server_secret == SECRET
    assert keys.named_keys["quarterly"] == NAMED
    assert set(keys.named_keys) == {"quarterly", "aml_2026"}
    assert load_export_keys(Env({})) is None


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"LEDGER_EXPORT_KEY_NAMES": "quarterly"}, "LEDGER_EXPORT_PSEUDONYM_KEY"),
        ({"LEDGER_EXPORT_PSEUDONYM_KEY": "short"}, "32-byte key"),
        ({"LEDGER_EXPORT_PSEUDONYM_KEY": SECRET.hex(), "LEDGER_EXPORT_KEY_NAMES": "Bad-Name"}, "lower-case"),
        ({"LEDGER_EXPORT_PSEUDONYM_KEY": SECRET.hex(), "LEDGER_EXPORT_KEY_NAMES": "q"}, "LEDGER_EXPORT_KEY_Q"),
        (
            {
                "LEDGER_EXPORT_PSEUDONYM_KEY": SECRET.hex(),
                "LEDGER_EXPORT_KEY_NAMES": ",".join(f"k{i}" for i in range(33)),
            },
            "more than 32",
        ),
    ],
)
def test_bad_key_settings_stop_the_start(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_export_keys(Env(environ))
    assert needle in str(raised.value)
    assert SECRET.hex() not in str(raised.value)
