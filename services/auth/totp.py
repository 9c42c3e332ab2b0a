"""TOTP (RFC 6238) codes and recovery codes: pure functions of a secret, a time and the last step used.

A code is accepted for the current 30-second step or one step either side (authenticator clock drift), and only
for a step later than the last one accepted, so a code already used in its window is refused.
"""

from __future__ import annotations

import base64
import hmac
import secrets

import pyotp

from services.auth import limits

TOTP_DIGITS = 6
TOTP_ISSUER = "Wallet"
RECOVERY_CODE_BYTES = 8  # 64 bits, shown as 13 base32 characters in groups


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, account_name: str, organization_slug: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=limits.TOTP_STEP_S).provisioning_uri(
        name=account_name, issuer_name=f"{TOTP_ISSUER} ({organization_slug})"
    )


def step_at(now_s: float) -> int:
    return int(now_s // limits.TOTP_STEP_S)


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=limits.TOTP_STEP_S).at(step * limits.TOTP_STEP_S)


def matching_step(secret: str, code: str, now_s: float, last_step: int) -> int | None:
    """The step ``code`` belongs to (within drift), if it is later than ``last_step``; else None."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    current = step_at(now_s)
    for step in range(current - limits.TOTP_DRIFT_STEPS, current + limits.TOTP_DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(code_at_step(secret, step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(limits.RECOVERY_CODE_COUNT):
        raw = secrets.token_bytes(RECOVERY_CODE_BYTES)
        text = base64.b32encode(raw).decode().rstrip("=")
        codes.append(f"{text[:4]}-{text[4:8]}-{text[8:13]}".lower())
    return codes


def normalize_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")
