"""Pure rules of credentials in use: brute-force counters, refresh-token rotation and access-token claims (no I/O,
no clock or randomness except passed in). Re-exported by ``domain``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from services.auth import limits
from services.kit.errors import FieldViolation, InvalidArgument

# --- brute force ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    delay_from_failures: int
    lock_at_failures: int
    lock_s: int
    window_s: int = limits.BRUTE_FORCE_WINDOW_S


@dataclass(frozen=True, slots=True)
class FailureCounter:
    failures: int = 0
    next_allowed_at: float | None = None
    locked_until: float | None = None


def refusal_s(counter: FailureCounter, now_s: float) -> float | None:
    """Seconds until a sign-in may be tried again, or None when it may be tried now."""
    if counter.locked_until is not None and counter.locked_until > now_s:
        return counter.locked_until - now_s
    if counter.next_allowed_at is not None and counter.next_allowed_at > now_s:
        return counter.next_allowed_at - now_s
    return None


def after_failure(counter: FailureCounter, now_s: float, thresholds: Thresholds) -> FailureCounter:
    """Progressive delay from ``delay_from_failures`` (doubling each time), a lock at ``lock_at_failures``."""
    expired_lock = counter.locked_until is not None and counter.locked_until <= now_s
    failures = 1 if expired_lock else counter.failures + 1
    if failures >= thresholds.lock_at_failures:
        return FailureCounter(failures, None, now_s + thresholds.lock_s)
    if failures >= thresholds.delay_from_failures:
        exponent = failures - thresholds.delay_from_failures
        delay_s = min(limits.BRUTE_FORCE_DELAY_S_BASE * 2**exponent, limits.BRUTE_FORCE_DELAY_S_MAX)
        return FailureCounter(failures, now_s + delay_s, None)
    return FailureCounter(failures, None, None)


def stricter_counter(first: FailureCounter, second: FailureCounter) -> FailureCounter:
    """Two copies of one counter merged so that neither's delay or lock is lifted: the larger count, the later
    instants."""
    return FailureCounter(
        max(first.failures, second.failures),
        _later(first.next_allowed_at, second.next_allowed_at),
        _later(first.locked_until, second.locked_until),
    )


def _later(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)


def just_locked(before: FailureCounter, after: FailureCounter, now_s: float) -> bool:
    was_locked = before.locked_until is not None and before.locked_until > now_s
    return not was_locked and after.locked_until is not None


# --- refresh tokens -------------------------------------------------------------------------------------------


class RefreshOutcome(enum.Enum):
    ROTATE = "rotate"
    SAME_SUCCESSOR = "same_successor"
    REUSED = "reused"


def refresh_outcome(rotated_at_s: float | None, successor_used: bool, now_s: float, grace_s: float) -> RefreshOutcome:
    """A fresh token rotates; a rotated one inside the grace window (whose successor is still unused) gets the same
    successor back; anything else is a reuse that revokes the family."""
    if rotated_at_s is None:
        return RefreshOutcome.ROTATE
    if now_s - rotated_at_s <= grace_s and not successor_used:
        return RefreshOutcome.SAME_SUCCESSOR
    return RefreshOutcome.REUSED


# --- tokens ---------------------------------------------------------------------------------------------------

AMR_PASSWORD = "pwd"  # noqa: S105
AMR_OTP = "otp"
ACR_PASSWORD = "pwd"  # noqa: S105
ACR_MFA = "mfa"


def acr_for(amr: Sequence[str]) -> str:
    return ACR_MFA if len(set(amr)) >= 2 else ACR_PASSWORD


@dataclass(frozen=True, slots=True)
class TokenSubject:
    """Who an access token is for, and how they proved it."""

    principal_id: str
    organization_id: str
    kind: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    amr: tuple[str, ...]
    auth_time_s: int
    session_id: str | None = None
    device_id: str | None = None
    # A device step-up approves one operation: the token says which (see services.kit.tokens.Principal).
    bound_method: str | None = None
    bound_resource_id: str | None = None
    bound_currency: str | None = None
    bound_amount_minor: int | None = None


# Scope of a token issued while the organization requires MFA and the principal has none yet: enrolment only.
ENROLMENT_ONLY_SCOPES = ("auth.credentials.write", "auth.sessions.read", "auth.sessions.write")


def access_claims(
    subject: TokenSubject, *, issuer: str, audience: str, token_id: str, now_s: int, ttl_s: int, acr: str
) -> dict[str, object]:
    """The claims services.kit.tokens reads; ``scope`` only when there are scopes, ``sid``/``did`` when known."""
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject.principal_id,
        "org": subject.organization_id,
        "pty": subject.kind,
        "roles": list(subject.roles),
        "amr": list(subject.amr),
        "acr": acr,
        "auth_time": subject.auth_time_s,
        "iat": now_s,
        "nbf": now_s,
        "exp": now_s + ttl_s,
        "jti": token_id,
    }
    if subject.scopes:
        claims["scope"] = " ".join(subject.scopes)
    if subject.session_id is not None:
        claims["sid"] = subject.session_id
    if subject.device_id:
        claims["did"] = subject.device_id
    if subject.bound_method is not None:
        assert subject.bound_resource_id is not None
        claims["bound_method"] = subject.bound_method
        claims["bound_resource_id"] = subject.bound_resource_id
        if subject.bound_amount_minor is not None:
            claims["bound_currency"] = subject.bound_currency
            claims["bound_amount_minor"] = subject.bound_amount_minor
    return claims


def granted_scopes(requested: Sequence[str], granted: Sequence[str]) -> tuple[str, ...]:
    """Requested scopes must be a subset of the granted ones; none requested means all."""
    if not requested:
        return tuple(granted)
    extra = [scope for scope in requested if scope not in granted]
    if extra:
        raise InvalidArgument(
            "scopes not granted to this client",
            field_violations=[FieldViolation("scopes", f"{scope} is not granted") for scope in extra],
        )
    return tuple(dict.fromkeys(requested))
