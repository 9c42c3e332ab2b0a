"""Redaction of secrets and personal data from free text (log lines, exception messages, span attributes).

This is the last line of defence, not the first: code should never put a phone number or a token in a log call.
The filter over-redacts on purpose (a long bare number may be masked even if it is not a phone number), because a
masked amount in a log costs little and a leaked phone number costs a lot.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"
REDACTED_PAN = "[REDACTED_PAN]"
REDACTED_PHONE = "[REDACTED_PHONE]"
REDACTED_JWT = "[REDACTED_JWT]"

PAN_DIGITS_MIN = 13
PAN_DIGITS_MAX = 19

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# key=value / "key": "value" pairs whose key names a secret.
_SECRET_PAIR = re.compile(
    r"""(?ix)
    (\b(?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api[_-]?key|authorization
        |cvv|cvc|pin|otp|totp_code|recovery_code|private_key)\b)
    (["']?\s*[:=]\s*["']?)
    ([^\s"',;&}]+)
    """
)
# 13-19 digits, optionally grouped by single spaces or dashes, not inside a longer word or number.
_PAN_CANDIDATE = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
# International format: + then 7..15 digits, with optional separators and one optional (area) group.
_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w])")
# National formats: (555) 123-4567, 555-123-4567, 0171 1234567, and bare runs of 10-15 digits (13812345678).
_PHONE_NATIONAL = re.compile(
    r"(?<![\w.-])(?:\(\d{2,5}\)\s?\d{3,4}[ .-]?\d{3,4}|\d{3}[ .-]\d{3}[ .-]\d{4}|0\d{3,4} \d{6,8}|\d{10,15})(?![\w-])"
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _redact_pan(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if PAN_DIGITS_MIN <= len(digits) <= PAN_DIGITS_MAX and _luhn_valid(digits):
        return REDACTED_PAN
    return match.group(0)


def _redact_international_phone(match: re.Match[str]) -> str:
    digit_count = sum(char.isdigit() for char in match.group(0))
    return REDACTED_PHONE if digit_count >= 7 else match.group(0)


def redact(text: str) -> str:
    """Returns ``text`` with tokens, secrets, card numbers and phone numbers replaced by markers."""
    if not text:
        return text
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _JWT.sub(REDACTED_JWT, text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PAN_CANDIDATE.sub(_redact_pan, text)
    text = _PHONE_INTERNATIONAL.sub(_redact_international_phone, text)
    return _PHONE_NATIONAL.sub(REDACTED_PHONE, text)
