"""Card secrets' pure rules: Luhn, generation from caller-supplied random bytes, validation of imported cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.contacts.limits import (
    CARD_NUMBER_LENGTH_GENERATED,
    CARD_VALIDITY_MONTHS_DEFAULT,
    CARD_VALIDITY_MONTHS_MAX,
)
from services.kit.errors import FieldViolation

CVV_DIGITS_GENERATED = 3
RANDOM_BYTES_NEEDED = CARD_NUMBER_LENGTH_GENERATED + CVV_DIGITS_GENERATED


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` Luhn-valid."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True, slots=True)
class CardSecretValue:
    """Number and CVV: ``repr`` hides both."""

    card_number: str
    cvv: str
    expiry_month: int
    expiry_year: int

    def __repr__(self) -> str:
        return f"CardSecretValue(last_four={self.card_number[-4:]!r}, expiry={self.expiry_month}/{self.expiry_year})"

    @property
    def last_four(self) -> str:
        return self.card_number[-4:]


def _digits_from(random_bytes: bytes) -> str:
    # Each byte modulo 10: a tiny bias towards 0-5 is irrelevant for test-BIN numbers, and keeps this pure.
    return "".join(str(byte % 10) for byte in random_bytes)


def generate_card(
    bin_prefix: str, validity_months: int, now: datetime, random_bytes: bytes, violations: list[FieldViolation]
) -> CardSecretValue | None:
    if not bin_prefix.isdigit() or len(bin_prefix) not in (6, 8):
        violations.append(FieldViolation("generate.bin", "must be 6 or 8 digits"))
    if validity_months < 0 or validity_months > CARD_VALIDITY_MONTHS_MAX:
        violations.append(FieldViolation("generate.validity_months", f"must be 0..{CARD_VALIDITY_MONTHS_MAX}"))
    if violations:
        return None
    assert len(random_bytes) >= RANDOM_BYTES_NEEDED
    digits = _digits_from(random_bytes)
    body_length = CARD_NUMBER_LENGTH_GENERATED - len(bin_prefix) - 1
    partial = bin_prefix + digits[:body_length]
    months = validity_months or CARD_VALIDITY_MONTHS_DEFAULT
    month_index = now.year * 12 + (now.month - 1) + months
    return CardSecretValue(
        card_number=partial + luhn_check_digit(partial),
        cvv=digits[CARD_NUMBER_LENGTH_GENERATED : CARD_NUMBER_LENGTH_GENERATED + CVV_DIGITS_GENERATED],
        expiry_month=month_index % 12 + 1,
        expiry_year=month_index // 12,
    )


def validate_provided_card(
    card_number: str, cvv: str, expiry_month: int, expiry_year: int, violations: list[FieldViolation]
) -> CardSecretValue | None:
    if not (12 <= len(card_number) <= 19) or not luhn_valid(card_number):
        violations.append(FieldViolation("provided.card_number", "must be 12-19 digits and Luhn-valid"))
    if not cvv.isdigit() or len(cvv) not in (3, 4):
        violations.append(FieldViolation("provided.cvv", "must be 3 or 4 digits"))
    if not 1 <= expiry_month <= 12:
        violations.append(FieldViolation("provided.expiry_month", "must be 1-12"))
    if not 2000 <= expiry_year <= 2100:
        violations.append(FieldViolation("provided.expiry_year", "must be a four-digit year"))
    if violations:
        return None
    return CardSecretValue(card_number, cvv, expiry_month, expiry_year)


@dataclass(frozen=True, slots=True)
class CardSecret:
    organization_id: UUID
    card_secret_id: UUID
    customer_id: UUID
    number_ciphertext: bytes | None
    cvv_ciphertext: bytes | None
    last_four: str
    expiry_month: int
    expiry_year: int
    request_digest: bytes
    created_at: datetime
    deleted_at: datetime | None
