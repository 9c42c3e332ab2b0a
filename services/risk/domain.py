"""Risk's pure rules: decisions, the assessment context and its validation, rule versions,
case transitions and domain errors. No I/O, no clock (``now_s`` is passed in)."""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields

from services.kit.errors import FailedPrecondition, FieldViolation, NotFound, invalid
from services.kit.ids import parse_uuid
from services.risk import limits

_CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{2,11}$")


class Decision(enum.Enum):
    """Values match wallet.risk.v1.Decision; a larger value is more severe."""

    ALLOW = 1
    CHALLENGE = 2
    REVIEW = 3
    DENY = 4

    @property
    def severity(self) -> int:
        return self.value


class RuleFormat(enum.Enum):
    YAML = 1
    JSON = 2


class ListKind(enum.Enum):
    BLOCK = 1
    ALLOW = 2


class ListEntryType(enum.Enum):
    ACCOUNT = 1
    DEVICE = 2
    IP_ADDRESS = 3
    COUNTERPARTY = 4


class CaseStatus(enum.Enum):
    OPEN = 1
    APPROVED = 2
    REJECTED = 3
    EXPIRED = 4


class CaseResolution(enum.Enum):
    APPROVE = 1
    REJECT = 2


class AmlReportKind(enum.Enum):
    LARGE_TRANSACTION = 1
    STRUCTURING = 2


# --- errors ---


class RulesVersionConflict(FailedPrecondition):
    reason = "RULES_VERSION_CONFLICT"


class CaseAlreadyResolved(FailedPrecondition):
    reason = "CASE_ALREADY_RESOLVED"


class CaseNotFound(NotFound):
    pass


class RuleVersionNotFound(NotFound):
    pass


# --- assessment ---


@dataclass(frozen=True, slots=True)
class AssessmentContext:
    """The payment being assessed. Enum-like fields hold the proto value names without prefix (``MOBILE_APP``)."""

    debit_account_id: str
    credit_account_id: str
    amount_minor: int
    currency: str
    transfer_id: str = ""
    debit_customer_id: str = ""
    credit_customer_id: str = ""
    debit_account_kind: str = ""
    credit_account_kind: str = ""
    transfer_kind: str = ""
    channel: str = ""
    device_id: str = ""
    ip_address: str = ""
    principal_id: str = ""
    actor_kind: str = ""
    amr: tuple[str, ...] = ()
    acr: str = ""
    auth_time_s: int | None = None
    counterparty_id: str = ""

    @property
    def payee_id(self) -> str:
        """Who is paid, for first-payment and counterparty features: the named counterparty or the credit account."""
        return self.counterparty_id or self.credit_account_id

    def digest(self) -> str:
        """Identifies the payment, so a reused assessment id with a different payment is detected. Only what is
        paid, by whom to whom: how the caller authenticated and from where (channel, device, IP, principal, amr,
        acr, auth_time) are left out, because the ledger retries a CHALLENGEd transfer with the same id after the
        customer stepped up — the same payment, a stronger token — and must get the stored decision back."""
        # Field by field rather than dataclasses.asdict (a deep copy): this runs on every Assess.
        values = [getattr(self, name) for name in PAYMENT_FIELDS]
        canonical = json.dumps(values, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


CONTEXT_FIELDS = tuple(item.name for item in fields(AssessmentContext))
PAYMENT_FIELDS = (
    "debit_account_id",
    "credit_account_id",
    "amount_minor",
    "currency",
    "transfer_id",
    "debit_customer_id",
    "credit_customer_id",
    "debit_account_kind",
    "credit_account_kind",
    "transfer_kind",
    "counterparty_id",
)
assert set(PAYMENT_FIELDS) <= set(CONTEXT_FIELDS)


def validate_context(assessment_id: str, context: AssessmentContext) -> uuid.UUID:
    """Checks every field and raises one InvalidArgument naming all bad ones; returns the parsed assessment id."""
    violations: list[FieldViolation] = []
    parsed = parse_uuid(assessment_id, "assessment_id", violations)
    parse_uuid(context.debit_account_id, "context.debit_account_id", violations)
    parse_uuid(context.credit_account_id, "context.credit_account_id", violations)
    if context.debit_account_id and context.debit_account_id == context.credit_account_id:
        violations.append(FieldViolation("context.credit_account_id", "must differ from the debit account"))
    if not 0 < context.amount_minor <= limits.AMOUNT_MINOR_MAX:
        violations.append(FieldViolation("context.amount.amount_minor", "must be positive and at most 10^15"))
    if not _CURRENCY.match(context.currency):
        violations.append(FieldViolation("context.amount.currency", "must be an ISO 4217 code or an asset code"))
    for name in (
        "transfer_id",
        "device_id",
        "principal_id",
        "counterparty_id",
        "debit_customer_id",
        "credit_customer_id",
    ):
        if len(getattr(context, name)) > limits.ID_LENGTH_MAX:
            violations.append(FieldViolation(f"context.{name}", f"at most {limits.ID_LENGTH_MAX} characters"))
    if context.ip_address:
        try:
            ipaddress.ip_address(context.ip_address)
        except ValueError:
            violations.append(FieldViolation("context.ip_address", "must be an IPv4 or IPv6 address"))
    if violations:
        raise invalid(violations)
    assert parsed is not None
    return parsed


@dataclass(frozen=True, slots=True)
class AssessmentResult:
    assessment_id: str
    decision: Decision
    score: int
    reason_codes: tuple[str, ...]
    rules_version: int
    evaluation_us: int
    anomaly_score: int
    anomaly_shadow: bool
    assessed_at_s: float
    context_digest: str
    case_id: str = ""


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """One recorded assessment: the result, the context and the features the rules saw (for backtests)."""

    organization_id: str
    result: AssessmentResult
    context: AssessmentContext
    features: Mapping[str, int | float | bool | str]
    list_outcome: str = ""


# --- cases ---


@dataclass(frozen=True, slots=True)
class CaseEvent:
    action: str
    actor_principal_id: str
    note: str
    occurred_at_s: float


@dataclass(frozen=True, slots=True)
class ReviewCase:
    case_id: str
    transfer_id: str
    assessment: AssessmentRecord
    status: CaseStatus
    hold_expires_at_s: float | None
    resolved_by_principal_id: str
    resolution_note: str
    resolve_request_id: str
    ledger_confirmed: bool
    opened_at_s: float
    closed_at_s: float | None
    history: tuple[CaseEvent, ...] = ()


def resolved_status(case: ReviewCase, resolution: CaseResolution, request_id: str) -> CaseStatus | None:
    """The status an OPEN case moves to; None when this exact request already resolved it (a retry)."""
    if case.status is not CaseStatus.OPEN:
        if case.resolve_request_id == request_id:
            return None
        raise CaseAlreadyResolved(
            f"case is already {case.status.name.lower()}", metadata={"status": case.status.name}
        )
    return CaseStatus.APPROVED if resolution is CaseResolution.APPROVE else CaseStatus.REJECTED


def validate_resolution(case_id: str, resolution: CaseResolution | None, note: str, request_id: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(case_id, "case_id", violations)
    parse_uuid(request_id, "request_id", violations)
    if resolution is None:
        violations.append(FieldViolation("resolution", "must be APPROVE or REJECT"))
    if not note.strip():
        violations.append(FieldViolation("note", "is required"))
    elif len(note) > limits.CASE_NOTE_LENGTH_MAX:
        violations.append(FieldViolation("note", f"at most {limits.CASE_NOTE_LENGTH_MAX} characters"))
    if violations:
        raise invalid(violations)


# --- AML reports ---


@dataclass(frozen=True, slots=True)
class AmlReport:
    aml_report_id: str
    kind: AmlReportKind
    account_id: str
    customer_id: str
    transfer_ids: tuple[str, ...]
    total_amount_minor: int
    currency: str
    threshold_minor: int
    window_start_s: float
    window_end_s: float
    created_at_s: float = 0.0


# --- rule versions ---


@dataclass(frozen=True, slots=True)
class RuleVersion:
    version: int
    document: str
    format: RuleFormat
    checksum: str
    comment: str
    copied_from_version: int
    published_by_principal_id: str
    published_at_s: float
    request_id: str = ""


def rules_checksum(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def validate_publish(expected_active_version: int, comment: str, request_id: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(request_id, "request_id", violations)
    if expected_active_version < 0:
        violations.append(FieldViolation("expected_active_version", "must not be negative"))
    if len(comment) > limits.COMMENT_LENGTH_MAX:
        violations.append(FieldViolation("comment", f"at most {limits.COMMENT_LENGTH_MAX} characters"))
    if violations:
        raise invalid(violations)
