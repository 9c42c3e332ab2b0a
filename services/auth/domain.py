"""Auth's pure rules: principals, validation (collecting every violation), brute-force counters, refresh-token
rotation, token claims, and the domain errors. No I/O, no clock or randomness except passed in."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.auth import limits
from services.auth.domain_tokens import (
    ACR_MFA,
    ACR_PASSWORD,
    AMR_OTP,
    AMR_PASSWORD,
    ENROLMENT_ONLY_SCOPES,
    FailureCounter,
    RefreshOutcome,
    Thresholds,
    TokenSubject,
    access_claims,
    acr_for,
    after_failure,
    granted_scopes,
    just_locked,
    refresh_outcome,
    refusal_s,
    stricter_counter,
)
from services.kit.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_SERVICE

# --- errors ---------------------------------------------------------------------------------------------------


class InvalidCredentials(Unauthenticated):
    reason = "INVALID_CREDENTIALS"

    def __init__(self) -> None:
        # One message whatever was wrong: never say whether the login exists.
        super().__init__("invalid login or password")


class AccountLocked(ResourceExhausted):
    reason = "ACCOUNT_LOCKED"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many failed sign-ins; try again later", retry_after_s=max(1.0, retry_after_s))


class PasswordTooWeak(InvalidArgument):
    reason = "PASSWORD_TOO_WEAK"


class MfaCodeInvalid(Unauthenticated):
    reason = "MFA_CODE_INVALID"

    def __init__(self) -> None:
        super().__init__("the code is wrong, expired or already used")


class MfaChallengeInvalid(Unauthenticated):
    reason = "MFA_CHALLENGE_INVALID"

    def __init__(self) -> None:
        super().__init__("the MFA challenge is unknown, used or expired")


class MfaEnrolmentRequired(FailedPrecondition):
    reason = "MFA_ENROLMENT_REQUIRED"


class RefreshTokenInvalid(Unauthenticated):
    reason = "REFRESH_TOKEN_INVALID"

    def __init__(self) -> None:
        super().__init__("the refresh token is unknown, expired or revoked")


class RefreshTokenReused(Unauthenticated):
    reason = "REFRESH_TOKEN_REUSED"

    def __init__(self) -> None:
        super().__init__("the refresh token was already used; the session has been revoked")


class PrincipalDisabled(FailedPrecondition):
    reason = "PRINCIPAL_DISABLED"

    def __init__(self) -> None:
        super().__init__("this account is disabled")


class IdentityAlreadyExists(AlreadyExists):
    reason = "IDENTITY_ALREADY_EXISTS"

    def __init__(self) -> None:
        super().__init__("this email is already registered in the organization", metadata={"field": "email"})


class SlugTaken(AlreadyExists):
    def __init__(self) -> None:
        super().__init__("this organization slug is taken", metadata={"field": "slug"})


class ConcurrentCreate(Aborted):
    def __init__(self) -> None:
        # Two calls with the same client-chosen id raced; a retry replays the one that won.
        super().__init__("a concurrent request created this resource; retry to get it")


class InvitationInvalid(FailedPrecondition):
    reason = "INVITATION_INVALID"

    def __init__(self) -> None:
        super().__init__("the invitation is unknown, already used or expired")


class SignUpNotAllowed(FailedPrecondition):
    reason = "SIGN_UP_NOT_ALLOWED"

    def __init__(self) -> None:
        super().__init__("this organization does not allow customer self sign-up")


def not_found(what: str) -> NotFound:
    return NotFound(f"{what} not found")


# --- principals -----------------------------------------------------------------------------------------------


class Status(enum.Enum):
    INVITED = "invited"
    ACTIVE = "active"
    DISABLED = "disabled"


MEMBER_ROLES = ("owner", "admin", "finance", "approver", "risk_analyst", "auditor", "support")
ROLE_CUSTOMER = "customer"
ROLE_OWNER = "owner"
KINDS = (PRINCIPAL_KIND_MEMBER, PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_SERVICE)


@dataclass(frozen=True, slots=True)
class Principal:
    organization_id: str
    principal_id: str
    kind: str
    email: str | None
    display_name: str
    external_reference: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    status: Status
    password_hash: str | None
    totp_enrolled: bool
    totp_last_step: int
    created_at: float
    last_login_at: float | None
    secret_rotated_at: float | None = None


@dataclass(frozen=True, slots=True)
class Organization:
    organization_id: str
    slug: str
    display_name: str
    is_platform: bool
    created_at: float
    policy: OrganizationPolicy


@dataclass(frozen=True, slots=True)
class OrganizationPolicy:
    mfa_required: bool = False
    password_min_length: int = limits.PASSWORD_LENGTH_MIN
    session_max_lifetime_s: int = limits.SESSION_MAX_LIFETIME_S_DEFAULT
    session_idle_timeout_s: int = limits.SESSION_IDLE_TIMEOUT_S_DEFAULT
    customer_self_sign_up: bool = False
    updated_at: float = 0.0


POLICY_FIELDS = (
    "mfa_required",
    "password_min_length",
    "session_max_lifetime",
    "session_idle_timeout",
    "customer_self_sign_up",
)


def policy_attribute(path: str) -> str:
    """The dataclass attribute behind an update-mask path (durations carry their unit in the attribute name)."""
    return f"{path}_s" if path in ("session_max_lifetime", "session_idle_timeout") else path


def policy_violations(policy: OrganizationPolicy, prefix: str = "policy") -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if not limits.PASSWORD_LENGTH_MIN <= policy.password_min_length <= limits.PASSWORD_LENGTH_MAX:
        violations.append(
            FieldViolation(
                f"{prefix}.password_min_length",
                f"must be between {limits.PASSWORD_LENGTH_MIN} and {limits.PASSWORD_LENGTH_MAX}",
            )
        )
    if not limits.SESSION_MAX_LIFETIME_S_MIN <= policy.session_max_lifetime_s <= limits.SESSION_MAX_LIFETIME_S_MAX:
        violations.append(FieldViolation(f"{prefix}.session_max_lifetime", "must be between 1 hour and 90 days"))
    if not limits.SESSION_IDLE_TIMEOUT_S_MIN <= policy.session_idle_timeout_s <= limits.SESSION_IDLE_TIMEOUT_S_MAX:
        violations.append(FieldViolation(f"{prefix}.session_idle_timeout", "must be between 5 minutes and 30 days"))
    return violations


def apply_policy_update(
    current: OrganizationPolicy, wanted: OrganizationPolicy, mask: Sequence[str], now_s: float
) -> OrganizationPolicy:
    """The policy after changing the masked fields; raises with every bad field (unknown paths included)."""
    violations = [
        FieldViolation("update_mask", f"unknown field {path!r}") for path in mask if path not in POLICY_FIELDS
    ]
    if not mask:
        violations.append(FieldViolation("update_mask", "must name at least one field"))
    changes: dict[str, object] = {}
    for path in mask:
        if path in POLICY_FIELDS:
            changes[policy_attribute(path)] = getattr(wanted, policy_attribute(path))
    updated = replace(current, **changes, updated_at=now_s)  # type: ignore[arg-type]
    violations += policy_violations(updated)
    if violations:
        raise InvalidArgument("invalid policy update", field_violations=violations)
    return updated


# --- validation -----------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_SCOPE = re.compile(r"^[a-z_]+\.[a-z_]+\.[a-z_]+$")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str, field: str, violations: list[FieldViolation]) -> None:
    if email == "":
        violations.append(FieldViolation(field, "is required"))
    elif len(email) > limits.EMAIL_LENGTH_MAX or not _EMAIL.match(email):
        violations.append(FieldViolation(field, "must be an email address"))


def check_slug(slug: str, field: str, violations: list[FieldViolation]) -> None:
    if slug == "":
        violations.append(FieldViolation(field, "is required"))
    elif not limits.SLUG_LENGTH_MIN <= len(slug) <= limits.SLUG_LENGTH_MAX or not _SLUG.match(slug):
        violations.append(FieldViolation(field, "must be 3-40 lower-case letters, digits and inner hyphens"))


def check_display_name(name: str, field: str, violations: list[FieldViolation]) -> None:
    if name.strip() == "":
        violations.append(FieldViolation(field, "is required"))
    elif len(name) > limits.DISPLAY_NAME_LENGTH_MAX:
        violations.append(FieldViolation(field, f"must be at most {limits.DISPLAY_NAME_LENGTH_MAX} characters"))


def check_member_roles(roles: Sequence[str], field: str, violations: list[FieldViolation]) -> None:
    if not roles:
        violations.append(FieldViolation(field, "must name at least one role"))
    for role in roles:
        if role not in MEMBER_ROLES:
            violations.append(FieldViolation(field, f"{role or 'unspecified'} is not a member role"))


def check_scopes(
    scopes: Sequence[str], grantable: frozenset[str], field: str, violations: list[FieldViolation]
) -> None:
    if not scopes:
        violations.append(FieldViolation(field, "must name at least one scope"))
    if len(scopes) > limits.SCOPES_MAX:
        violations.append(FieldViolation(field, f"at most {limits.SCOPES_MAX} scopes"))
    for scope in scopes:
        if not _SCOPE.match(scope):
            violations.append(FieldViolation(field, f"{scope!r} is not a permission name"))
        elif scope not in grantable:
            violations.append(FieldViolation(field, f"{scope} is not a permission you may grant"))


def password_violations(problems: Sequence[str], field: str) -> list[FieldViolation]:
    return [FieldViolation(field, problem) for problem in problems]


def raise_if(violations: Sequence[FieldViolation], password_field: str | None = None) -> None:
    """Raises every violation at once; PASSWORD_TOO_WEAK when the password is the only bad field."""
    if not violations:
        return
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    if password_field is not None and all(v.field == password_field for v in violations):
        raise PasswordTooWeak(f"invalid request: {summary}", field_violations=violations)
    raise InvalidArgument(f"invalid request: {summary}", field_violations=violations)


def check_last_owner(roles_before: Sequence[str], roles_after: Sequence[str], active_owner_count: int) -> None:
    """The organization always keeps one active owner."""
    losing_owner = ROLE_OWNER in roles_before and ROLE_OWNER not in roles_after
    if losing_owner and active_owner_count <= 1:
        raise FailedPrecondition("the last owner cannot lose the owner role or be disabled")


def token_roles(principal: Principal) -> tuple[str, ...]:
    if principal.kind == PRINCIPAL_KIND_CUSTOMER:
        return (ROLE_CUSTOMER,)
    if principal.kind == PRINCIPAL_KIND_MEMBER:
        return principal.roles
    return ()


# Credentials in use (brute force, refresh rotation, claims) live in domain_tokens; re-exported here so callers
# see one domain module.
__all__ = [
    "ACR_MFA",
    "ACR_PASSWORD",
    "AMR_OTP",
    "AMR_PASSWORD",
    "ENROLMENT_ONLY_SCOPES",
    "FailureCounter",
    "RefreshOutcome",
    "Thresholds",
    "TokenSubject",
    "access_claims",
    "acr_for",
    "after_failure",
    "granted_scopes",
    "just_locked",
    "refresh_outcome",
    "refusal_s",
    "stricter_counter",
]
