"""Complaints and disputes, pure: the state machine, SLA clocks in business days, breach flags, reference numbers and
request validation. No I/O, no clock (``now_s`` is passed in).

Lifecycle: RECEIVED -> IN_PROGRESS <-> AWAITING_CUSTOMER -> UPHELD | REJECTED. Acknowledging stops the acknowledge
clock. While the complaint awaits the customer the resolve clock pauses: the resolve due instant moves later by the
(wall-clock) time spent waiting, so a complaint cannot breach while the ball is in the customer's court, and one that
had already breached before the wait stays breached.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from services.kit.errors import FailedPrecondition, FieldViolation, IdempotencyKeyReused, NotFound, invalid
from services.kit.ids import parse_uuid
from services.risk import limits

DAY_S = 24 * 3600
SATURDAY = 5  # datetime.weekday(): Monday is 0, Saturday 5, Sunday 6
REFERENCE_PREFIX = "CMP"
REFERENCE_DIGITS = 6
# Namespaces of the ids derived from a client's request id (stable across retries, so each step runs once).
REFUND_NAMESPACE = uuid.UUID("0b8f5c7e-3f0e-4d59-9a43-6c1c2f7b1a01")
STEP_NOTE_NAMESPACE = uuid.UUID("5d7b7f0c-8a33-4f54-8b0e-2f6f3c8d9e02")
NOTIFICATION_NAMESPACE = uuid.UUID("9c1e2a4b-6d5f-4e7a-8b9c-0d1e2f3a4b03")


class ComplaintCategory(enum.Enum):
    """Values match wallet.risk.v1.ComplaintCategory."""

    TRANSFER = 1
    CARD_PAYMENT = 2
    UNAUTHORIZED_TRANSACTION = 3
    SERVICE = 4
    PRIVACY = 5

    @property
    def needs_transfer(self) -> bool:
        return self in (
            ComplaintCategory.TRANSFER,
            ComplaintCategory.CARD_PAYMENT,
            ComplaintCategory.UNAUTHORIZED_TRANSACTION,
        )


class ComplaintStatus(enum.Enum):
    """Values match wallet.risk.v1.ComplaintStatus."""

    RECEIVED = 1
    IN_PROGRESS = 2
    AWAITING_CUSTOMER = 3
    UPHELD = 4
    REJECTED = 5

    @property
    def is_open(self) -> bool:
        return self not in (ComplaintStatus.UPHELD, ComplaintStatus.REJECTED)


OPEN_STATUSES = tuple(status for status in ComplaintStatus if status.is_open)


class ComplaintOutcome(enum.Enum):
    UPHELD = 1
    REJECTED = 2


class NoteVisibility(enum.Enum):
    INTERNAL = 1
    CUSTOMER = 2


# --- errors ---


class ComplaintNotFound(NotFound):
    pass


class ComplaintAlreadyResolved(FailedPrecondition):
    reason = "COMPLAINT_ALREADY_RESOLVED"


class ComplaintStateInvalid(FailedPrecondition):
    reason = "COMPLAINT_STATE_INVALID"


def _state_invalid(complaint: Complaint, step: str) -> FailedPrecondition:
    status = complaint.status
    if not status.is_open or complaint.resolve_request_id:
        return ComplaintAlreadyResolved(
            f"complaint {complaint.reference_number} is already resolved", metadata={"status": status.name}
        )
    return ComplaintStateInvalid(
        f"cannot {step} a complaint that is {status.name.lower()}", metadata={"status": status.name}
    )


# --- SLA ---


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Business days (Mon-Fri, UTC) to acknowledge and to resolve a complaint of one category."""

    acknowledge_business_days: int
    resolve_business_days: int

    def __post_init__(self) -> None:
        assert 0 < self.acknowledge_business_days <= self.resolve_business_days <= limits.COMPLAINT_SLA_DAYS_MAX


DEFAULT_SLA = SlaPolicy(acknowledge_business_days=1, resolve_business_days=15)


def add_business_days(start_s: float, days: int) -> float:
    """The instant ``days`` business days after ``start_s`` (Mon-Fri, UTC; no holiday calendar). A start on a weekend
    counts from Monday 00:00, so a complaint opened on Saturday gets as many working hours as one opened on Monday."""
    assert days >= 0
    moment = datetime.fromtimestamp(start_s, UTC)
    if moment.weekday() >= SATURDAY:
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        moment = midnight + timedelta(days=7 - moment.weekday())
    for _ in range(days):
        moment += timedelta(days=1)
        while moment.weekday() >= SATURDAY:
            moment += timedelta(days=1)
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class SlaView:
    """The SLA clocks as seen at one instant."""

    acknowledge_due_at_s: float
    acknowledged_at_s: float | None
    resolve_due_at_s: float
    resolve_time_left_s: float
    acknowledge_breached: bool
    resolve_breached: bool

    @property
    def breached(self) -> bool:
        return self.acknowledge_breached or self.resolve_breached


# --- the complaint ---


@dataclass(frozen=True, slots=True)
class ComplaintNote:
    complaint_note_id: str
    author_principal_id: str
    from_customer: bool
    visibility: NoteVisibility
    text: str
    created_at_s: float


@dataclass(frozen=True, slots=True)
class Refund:
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Complaint:
    complaint_id: str
    reference_number: str
    customer_id: str
    category: ComplaintCategory
    status: ComplaintStatus
    transfer_id: str
    card_id: str
    description: str
    attachment_references: tuple[str, ...]
    opened_by_principal_id: str
    opened_at_s: float
    updated_at_s: float
    acknowledge_due_at_s: float
    resolve_due_at_s: float
    escalation_level: int = 0
    acknowledged_at_s: float | None = None
    acknowledge_request_id: str = ""
    awaiting_since_s: float | None = None
    # The resolution: set (with the request id) when an approver's decision starts, final once resolved_at_s is set.
    resolve_request_id: str = ""
    outcome: ComplaintOutcome | None = None
    resolution_reason: str = ""
    refund: Refund | None = None
    refund_transfer_id: str = ""
    resolved_by_principal_id: str = ""
    resolved_at_s: float | None = None
    notes: tuple[ComplaintNote, ...] = ()

    def visible_notes(self, *, to_customer: bool) -> tuple[ComplaintNote, ...]:
        if not to_customer:
            return self.notes
        return tuple(note for note in self.notes if note.visibility is NoteVisibility.CUSTOMER)


def sla_view(complaint: Complaint, now_s: float) -> SlaView:
    """The clocks at ``now_s`` (the resolution instant once resolved). The SQL filters in store_complaints.py
    (``breached_only``, the report, the gauges) state the same rules; tests check they agree."""
    end_s = complaint.resolved_at_s if complaint.resolved_at_s is not None else now_s
    acknowledged = complaint.acknowledged_at_s
    acknowledge_breached = (acknowledged if acknowledged is not None else end_s) > complaint.acknowledge_due_at_s
    if complaint.awaiting_since_s is not None:
        # Paused: the due instant keeps moving with the clock, so only a breach from before the wait shows.
        resolve_due_s = complaint.resolve_due_at_s + (end_s - complaint.awaiting_since_s)
        resolve_breached = complaint.awaiting_since_s > complaint.resolve_due_at_s
    else:
        resolve_due_s = complaint.resolve_due_at_s
        resolve_breached = end_s > resolve_due_s
    open_now = complaint.resolved_at_s is None
    time_left_s = max(0.0, resolve_due_s - now_s) if open_now and not resolve_breached else 0.0
    return SlaView(
        acknowledge_due_at_s=complaint.acknowledge_due_at_s,
        acknowledged_at_s=acknowledged,
        resolve_due_at_s=resolve_due_s,
        resolve_time_left_s=time_left_s,
        acknowledge_breached=acknowledge_breached,
        resolve_breached=resolve_breached,
    )


def reference_number(year: int, number: int) -> str:
    """``CMP-2026-000123``: the tenant's yearly sequence, zero-padded (wider once a tenant passes 999,999 a year)."""
    assert number > 0
    assert 2000 <= year <= 9999
    return f"{REFERENCE_PREFIX}-{year}-{number:0{REFERENCE_DIGITS}d}"


def year_of(moment_s: float) -> int:
    return datetime.fromtimestamp(moment_s, UTC).year


def derived_id(namespace: uuid.UUID, request_id: str) -> str:
    """An id derived from a client's request id: the same request always yields the same id."""
    return str(uuid.uuid5(namespace, request_id))


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for the customer about their complaint, handed to the contacts vault after the step commits."""

    notification_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Step:
    """What one use case writes in one transaction: the changed complaint, the audited action, and optionally a new
    note (``note_id_field`` names the request field its id came from) and a customer notification."""

    complaint: Complaint
    action: str
    note: ComplaintNote | None = None
    note_id_field: str = "complaint_note_id"
    notice: Notice | None = None


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    """One audited step of a complaint, as the tenant-wide history lists it (no free text)."""

    complaint_id: str
    event_number: int
    action: str
    actor_principal_id: str
    trace_id: str
    occurred_at: datetime
    category: ComplaintCategory


# --- opening ---


@dataclass(frozen=True, slots=True)
class ComplaintDraft:
    """What OpenComplaint asks for, with the customer already worked out from the caller."""

    complaint_id: str
    customer_id: str
    category: ComplaintCategory | None
    transfer_id: str
    card_id: str
    description: str
    attachment_references: tuple[str, ...]


def _text_violations(name: str, text: str, minimum: int, maximum: int, violations: list[FieldViolation]) -> None:
    if len(text.strip()) < minimum:
        violations.append(FieldViolation(name, "is required" if minimum <= 1 else f"at least {minimum} characters"))
    elif len(text) > maximum:
        violations.append(FieldViolation(name, f"at most {maximum} characters"))
    elif any(ord(char) < 32 and char not in "\n\t\r" for char in text):
        violations.append(FieldViolation(name, "must not contain control characters"))


def validate_draft(draft: ComplaintDraft) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(draft.complaint_id, "complaint_id", violations)
    parse_uuid(draft.customer_id, "customer_id", violations)
    if draft.category is None:
        violations.append(FieldViolation("category", "must be a complaint category"))
    elif draft.category.needs_transfer and not draft.transfer_id:
        violations.append(FieldViolation("transfer_id", f"is required for {draft.category.name} complaints"))
    parse_uuid(draft.transfer_id, "transfer_id", violations, required=False)
    parse_uuid(draft.card_id, "card_id", violations, required=False)
    _text_violations(
        "description",
        draft.description,
        limits.COMPLAINT_DESCRIPTION_LENGTH_MIN,
        limits.COMPLAINT_TEXT_LENGTH_MAX,
        violations,
    )
    if len(draft.attachment_references) > limits.COMPLAINT_ATTACHMENTS_MAX:
        violations.append(
            FieldViolation("attachment_references", f"at most {limits.COMPLAINT_ATTACHMENTS_MAX} references")
        )
    for index, reference in enumerate(draft.attachment_references):
        _text_violations(
            f"attachment_references[{index}]",
            reference,
            1,
            limits.COMPLAINT_ATTACHMENT_REFERENCE_LENGTH_MAX,
            violations,
        )
    if violations:
        raise invalid(violations)


def new_complaint(
    draft: ComplaintDraft, *, reference: str, opened_by: str, now_s: float, policy: SlaPolicy
) -> Complaint:
    assert draft.category is not None
    return Complaint(
        complaint_id=draft.complaint_id,
        reference_number=reference,
        customer_id=draft.customer_id,
        category=draft.category,
        status=ComplaintStatus.RECEIVED,
        transfer_id=draft.transfer_id,
        card_id=draft.card_id,
        description=draft.description,
        attachment_references=draft.attachment_references,
        opened_by_principal_id=opened_by,
        opened_at_s=now_s,
        updated_at_s=now_s,
        acknowledge_due_at_s=add_business_days(now_s, policy.acknowledge_business_days),
        resolve_due_at_s=add_business_days(now_s, policy.resolve_business_days),
    )


def check_open_replay(draft: ComplaintDraft, stored: Complaint) -> None:
    """A replayed OpenComplaint must ask for the same complaint."""
    differing = next(
        (
            name
            for name, wanted, kept in (
                ("customer_id", draft.customer_id, stored.customer_id),
                ("category", draft.category, stored.category),
                ("transfer_id", draft.transfer_id, stored.transfer_id),
                ("card_id", draft.card_id or stored.card_id, stored.card_id),
                ("description", draft.description, stored.description),
                ("attachment_references", draft.attachment_references, stored.attachment_references),
            )
            if wanted != kept
        ),
        None,
    )
    if differing is not None:
        raise IdempotencyKeyReused("complaint_id", differing)


# How a status reads in the customer's notification ("complaint CMP-2026-000123 is <words>").
STATUS_WORDS: Mapping[ComplaintStatus, str] = {
    ComplaintStatus.RECEIVED: "received",
    ComplaintStatus.IN_PROGRESS: "in progress",
    ComplaintStatus.AWAITING_CUSTOMER: "waiting for your reply",
    ComplaintStatus.UPHELD: "upheld",
    ComplaintStatus.REJECTED: "rejected",
}


def notification_message(text: str) -> str:
    """The vault takes template values of at most NOTIFICATION_PARAM_LENGTH_MAX characters; a longer text is cut with
    an ellipsis (the full text is in the customer-visible note or the resolution)."""
    flat = " ".join(text.split())
    if len(flat) <= limits.NOTIFICATION_PARAM_LENGTH_MAX:
        return flat
    return flat[: limits.NOTIFICATION_PARAM_LENGTH_MAX - 1] + "…"


# --- steps (each returns the changed complaint; None means this exact request already did it) ---


def validate_step(complaint_id: str, request_id: str, text_field: str = "", text: str = "") -> None:
    violations: list[FieldViolation] = []
    parse_uuid(complaint_id, "complaint_id", violations)
    parse_uuid(request_id, "request_id", violations)
    if text_field:
        _text_violations(text_field, text, 1, limits.COMPLAINT_TEXT_LENGTH_MAX, violations)
    if violations:
        raise invalid(violations)


def validate_note(complaint_id: str, complaint_note_id: str, text: str) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(complaint_note_id, "complaint_note_id", violations)
    parse_uuid(complaint_id, "complaint_id", violations)
    _text_violations("text", text, 1, limits.COMPLAINT_TEXT_LENGTH_MAX, violations)
    if violations:
        raise invalid(violations)


def acknowledge(complaint: Complaint, request_id: str, now_s: float) -> Complaint | None:
    if complaint.acknowledge_request_id == request_id:
        return None
    if complaint.status is not ComplaintStatus.RECEIVED or complaint.resolve_request_id:
        raise _state_invalid(complaint, "acknowledge")
    return replace(
        complaint,
        status=ComplaintStatus.IN_PROGRESS,
        acknowledged_at_s=now_s,
        acknowledge_request_id=request_id,
        updated_at_s=now_s,
    )


def request_information(complaint: Complaint, now_s: float) -> Complaint:
    """IN_PROGRESS -> AWAITING_CUSTOMER: the resolve clock pauses."""
    if complaint.status is not ComplaintStatus.IN_PROGRESS or complaint.resolve_request_id:
        raise _state_invalid(complaint, "request information for")
    return replace(complaint, status=ComplaintStatus.AWAITING_CUSTOMER, awaiting_since_s=now_s, updated_at_s=now_s)


def _end_wait(complaint: Complaint, now_s: float) -> Complaint:
    """Closes a running wait for the customer: the resolve due instant moves later by its length."""
    if complaint.awaiting_since_s is None:
        return complaint
    waited_s = max(0.0, now_s - complaint.awaiting_since_s)
    return replace(complaint, resolve_due_at_s=complaint.resolve_due_at_s + waited_s, awaiting_since_s=None)


def add_note(complaint: Complaint, note: ComplaintNote, now_s: float) -> Complaint:
    """A note on an open complaint; the customer's answer to AWAITING_CUSTOMER resumes the clock (IN_PROGRESS)."""
    if not complaint.status.is_open or complaint.resolve_request_id:
        raise _state_invalid(complaint, "add a note to")
    changed = replace(complaint, notes=(*complaint.notes, note), updated_at_s=now_s)
    if note.from_customer and complaint.status is ComplaintStatus.AWAITING_CUSTOMER:
        changed = replace(_end_wait(changed, now_s), status=ComplaintStatus.IN_PROGRESS)
    return changed


def escalate(complaint: Complaint, now_s: float) -> Complaint:
    if not complaint.status.is_open or complaint.resolve_request_id:
        raise _state_invalid(complaint, "escalate")
    return replace(complaint, escalation_level=complaint.escalation_level + 1, updated_at_s=now_s)


def check_note_replay(note: ComplaintNote, stored: ComplaintNote, id_field: str) -> None:
    differing = next(
        (
            name
            for name, wanted, kept in (
                ("text", note.text, stored.text),
                ("visibility", note.visibility, stored.visibility),
            )
            if wanted != kept
        ),
        None,
    )
    if differing is not None:
        raise IdempotencyKeyReused(id_field, differing)


# --- resolution ---


@dataclass(frozen=True, slots=True)
class ResolutionRequest:
    complaint_id: str
    outcome: ComplaintOutcome | None
    reason: str
    refund: Refund | None
    request_id: str


_CURRENCY_LENGTH = (3, 12)


def validate_resolution(request: ResolutionRequest) -> None:
    violations: list[FieldViolation] = []
    parse_uuid(request.complaint_id, "complaint_id", violations)
    parse_uuid(request.request_id, "request_id", violations)
    if request.outcome is None:
        violations.append(FieldViolation("outcome", "must be UPHELD or REJECTED"))
    _text_violations("reason", request.reason, 1, limits.COMPLAINT_TEXT_LENGTH_MAX, violations)
    refund = request.refund
    if refund is not None:
        if request.outcome is ComplaintOutcome.REJECTED:
            violations.append(FieldViolation("refund_amount", "only an upheld complaint is refunded"))
        if not 0 < refund.amount_minor <= limits.AMOUNT_MINOR_MAX:
            violations.append(FieldViolation("refund_amount.amount_minor", "must be positive and at most 10^15"))
        low, high = _CURRENCY_LENGTH
        if not (low <= len(refund.currency) <= high and refund.currency.isalnum() and refund.currency.isupper()):
            violations.append(FieldViolation("refund_amount.currency", "must be an ISO 4217 code or an asset code"))
    if violations:
        raise invalid(violations)


def begin_resolution(complaint: Complaint, request: ResolutionRequest, actor: str) -> Complaint | None:
    """Claims the complaint for this resolution (before any refund moves money). None: this request already claimed
    it (a retry, which then repeats only what is left); another request's claim or decision is
    COMPLAINT_ALREADY_RESOLVED, so at most one refund is ever made per complaint."""
    if complaint.resolve_request_id:
        if complaint.resolve_request_id != request.request_id:
            raise ComplaintAlreadyResolved(
                f"complaint {complaint.reference_number} is already resolved",
                metadata={"status": complaint.status.name},
            )
        differing = next(
            (
                name
                for name, wanted, kept in (
                    ("outcome", request.outcome, complaint.outcome),
                    ("reason", request.reason, complaint.resolution_reason),
                    ("refund_amount", request.refund, complaint.refund),
                )
                if wanted != kept
            ),
            None,
        )
        if differing is not None:
            raise IdempotencyKeyReused("request_id", differing)
        return None
    if complaint.status not in (ComplaintStatus.IN_PROGRESS, ComplaintStatus.AWAITING_CUSTOMER):
        raise _state_invalid(complaint, "resolve")
    if request.refund is not None and not complaint.transfer_id:
        raise ComplaintStateInvalid(
            "only a complaint about a transfer can be refunded", metadata={"status": complaint.status.name}
        )
    return replace(
        complaint,
        resolve_request_id=request.request_id,
        outcome=request.outcome,
        resolution_reason=request.reason,
        refund=request.refund,
        resolved_by_principal_id=actor,
    )


def finish_resolution(complaint: Complaint, refund_transfer_id: str, now_s: float) -> Complaint | None:
    """The claimed resolution becomes the outcome (after the refund, when there is one). None: already finished."""
    assert complaint.resolve_request_id, "begin_resolution first"
    assert complaint.outcome is not None
    if complaint.resolved_at_s is not None:
        return None
    status = ComplaintStatus.UPHELD if complaint.outcome is ComplaintOutcome.UPHELD else ComplaintStatus.REJECTED
    return replace(
        _end_wait(complaint, now_s),
        status=status,
        refund_transfer_id=refund_transfer_id,
        resolved_at_s=now_s,
        updated_at_s=now_s,
    )


def release_resolution(complaint: Complaint) -> Complaint:
    """Drops a claim whose refund the ledger refused for good (e.g. more than is left to reverse)."""
    assert complaint.resolved_at_s is None
    return replace(
        complaint,
        resolve_request_id="",
        outcome=None,
        resolution_reason="",
        refund=None,
        resolved_by_principal_id="",
    )


# --- reporting ---


# Age buckets of open complaints in the report, in calendar days: [0, 1), [1, 7), [7, 15), [15, ∞).
AGE_BUCKET_BOUNDS_DAYS = (1, 7, 15)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """Complaints opened in the period with one category and status."""

    category: ComplaintCategory
    status: ComplaintStatus
    count: int
    acknowledge_breached: int
    resolve_breached: int
    # Of those still open, how many fall in each age bucket (len(AGE_BUCKET_BOUNDS_DAYS) + 1 of them).
    open_by_age: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ComplaintReport:
    rows: tuple[ReportRow, ...]
    open_total: int
    breached_total: int
    generated_at_s: float


def validate_period(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    violations: list[FieldViolation] = []
    for name, value in (("start_time", start_s), ("end_time", end_s)):
        if value is None:
            violations.append(FieldViolation(name, "is required"))
        elif not 0 <= value <= limits.TIMESTAMP_S_MAX:
            violations.append(FieldViolation(name, "must be between 1970 and 9999"))
    if not violations and start_s is not None and end_s is not None:
        if end_s <= start_s:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        elif end_s - start_s > limits.COMPLAINT_REPORT_PERIOD_MAX_S:
            violations.append(FieldViolation("end_time", "the period is at most 366 days"))
    if violations:
        raise invalid(violations)
    assert start_s is not None
    assert end_s is not None
    return start_s, end_s


def sla_policies(overrides: Mapping[ComplaintCategory, SlaPolicy]) -> dict[ComplaintCategory, SlaPolicy]:
    return {category: overrides.get(category, DEFAULT_SLA) for category in ComplaintCategory}
