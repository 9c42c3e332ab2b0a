import pytest

from services.kit.redaction import REDACTED_PAN, REDACTED_PHONE, redact

PHONES = [
    "+8613812345678",
    "+86 138 1234 5678",
    "+1 (415) 555-2671",
    "+44 20 7946 0958",
    "13812345678",
    "(415) 555-2671",
    "415-555-2671",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_are_masked(phone: str) -> None:
    out = redact(f"sms to {phone} failed")
    assert REDACTED_PHONE in out
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert digits[-6:] not in "".join(ch for ch in out if ch.isdigit())


@pytest.mark.parametrize("pan", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"])
def test_luhn_valid_card_numbers_are_masked(pan: str) -> None:
    assert redact(f"card {pan} declined") == f"card {REDACTED_PAN} declined"


def test_bearer_tokens_and_jwts_are_masked() -> None:
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    out = redact(f"authorization: Bearer {jwt} and raw {jwt}")
    assert jwt not in out
    assert "eyJ" not in out


@pytest.mark.parametrize(
    "text",
    [
        'password="correct horse battery"',
        "client_secret=abc123xyz",
        '{"refresh_token": "r-123"}',
        "otp=123456",
    ],
)
def test_secret_pairs_are_masked(text: str) -> None:
    out = redact(text)
    for secret in ("correct", "abc123xyz", "r-123", "123456"):
        assert secret not in out


@pytest.mark.parametrize(
    "text",
    [
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "account 0190f6f1-7c1e-7a4b-9a5e-2d3c4b5a6978 moved 1250 minor units",
        "2026-11-23T11:03:34.123Z listening on 127.0.0.1:50052",
        "batch of 1000 transfers in 12 ms",
    ],
)
def test_ordinary_log_content_survives(text: str) -> None:
    assert redact(text) == text


def test_non_luhn_long_digit_runs_are_still_masked_as_possible_phones() -> None:
    # Over-redaction is deliberate: a 12-digit bare number may be a phone number.
    assert "123456789012" not in redact("ref 123456789012")
