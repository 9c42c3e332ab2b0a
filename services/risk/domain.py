"""Risk's pure rules: decisions, the assessment context and its validation, list entries and the list matcher,
case transitions and domain errors. No I/O, no clock (``now_s`` is passed in)."""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

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


class ListEntryNotFound(NotFound):
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
        """Identifies the content, so a reused assessment id with a different payment is detected."""
        # Field by field rather than dataclasses.asdict (a deep copy): this runs on every Assess.
        values = [getattr(self, name) for name in CONTEXT_FIELDS]
        canonical = json.dumps(values, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


CONTEXT_FIELDS = tuple(item.name for item in fields(AssessmentContext))


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


# --- lists ---


@dataclass(frozen=True, slots=True)
class ListEntry:
    list_entry_id: str
    list_kind: ListKind
    entry_type: ListEntryType
    value: str
    reason: str
    expires_at_s: float | None = None
    created_by_principal_id: str = ""
    created_at_s: float = 0.0
    removed_at_s: float | None = None

    def active_at(self, now_s: float) -> bool:
        return self.removed_at_s is None and (self.expires_at_s is None or self.expires_at_s > now_s)

    def same_content(self, other: ListEntry) -> str | None:
        """The first differing client-chosen field, or None."""
        for name in ("list_kind", "entry_type", "value", "reason", "expires_at_s"):
            if getattr(self, name) != getattr(other, name):
                return name
        return None


def normalize_list_value(entry_type: ListEntryType, value: str) -> str:
    """Canonical form for matching: lower-case UUIDs, compressed IP networks."""
    if entry_type is ListEntryType.IP_ADDRESS:
        network = ipaddress.ip_network(value, strict=False)
        return str(network.network_address) if network.num_addresses == 1 else str(network)
    if entry_type is ListEntryType.ACCOUNT:
        return value.lower()
    return value


def validate_list_entry(entry: ListEntry, now_s: float) -> ListEntry:
    violations: list[FieldViolation] = []
    parse_uuid(entry.list_entry_id, "list_entry_id", violations)
    if not isinstance(entry.list_kind, ListKind):
        violations.append(FieldViolation("list_kind", "must be BLOCK or ALLOW"))
    if not isinstance(entry.entry_type, ListEntryType):
        violations.append(FieldViolation("entry_type", "must be ACCOUNT, DEVICE, IP_ADDRESS or COUNTERPARTY"))
    value = entry.value
    if not value:
        violations.append(FieldViolation("value", "is required"))
    elif len(value) > limits.LIST_VALUE_LENGTH_MAX:
        violations.append(FieldViolation("value", f"at most {limits.LIST_VALUE_LENGTH_MAX} characters"))
    elif entry.entry_type is ListEntryType.ACCOUNT:
        parse_uuid(value.lower(), "value", violations)
    elif entry.entry_type is ListEntryType.IP_ADDRESS:
        try:
            value = normalize_list_value(entry.entry_type, value)
        except ValueError:
            violations.append(FieldViolation("value", "must be an IP address or CIDR block"))
    if not entry.reason.strip():
        violations.append(FieldViolation("reason", "is required"))
    elif len(entry.reason) > limits.LIST_REASON_LENGTH_MAX:
        violations.append(FieldViolation("reason", f"at most {limits.LIST_REASON_LENGTH_MAX} characters"))
    if entry.expires_at_s is not None and entry.expires_at_s <= now_s:
        violations.append(FieldViolation("expires_at", "must be in the future"))
    if violations:
        raise invalid(violations)
    if entry.entry_type is ListEntryType.ACCOUNT:
        value = value.lower()
    return ListEntry(
        entry.list_entry_id,
        entry.list_kind,
        entry.entry_type,
        value,
        entry.reason,
        entry.expires_at_s,
        entry.created_by_principal_id,
    )


@dataclass(frozen=True, slots=True)
class ListHit:
    list_kind: ListKind
    entry_type: ListEntryType

    @property
    def reason_code(self) -> str:
        prefix = "BLOCKLIST" if self.list_kind is ListKind.BLOCK else "ALLOWLIST"
        suffix = "IP" if self.entry_type is ListEntryType.IP_ADDRESS else self.entry_type.name
        return f"{prefix}_{suffix}"


@dataclass(frozen=True, slots=True)
class _ListIndex:
    # value -> expiry (None = never); networks for CIDR entries.
    exact: dict[tuple[ListEntryType, str], float | None] = field(default_factory=dict)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, float | None]] = field(default_factory=list)


class ListMatcher:
    """A tenant's active block and allow entries, indexed for O(1) lookups on the hot path."""

    def __init__(self, entries: Iterable[ListEntry]) -> None:
        self._indexes = {ListKind.BLOCK: _ListIndex(), ListKind.ALLOW: _ListIndex()}
        for entry in entries:
            index = self._indexes[entry.list_kind]
            if entry.entry_type is ListEntryType.IP_ADDRESS and "/" in entry.value:
                index.networks.append((ipaddress.ip_network(entry.value, strict=False), entry.expires_at_s))
            else:
                key = (entry.entry_type, entry.value)
                previous = index.exact.get(key, 0.0)
                longest = (
                    None if previous is None or entry.expires_at_s is None else max(previous, entry.expires_at_s)
                )
                index.exact[key] = longest

    def match(self, context: AssessmentContext, now_s: float) -> ListHit | None:
        """A block hit wins over an allow hit."""
        for kind in (ListKind.BLOCK, ListKind.ALLOW):
            entry_type = self._match_kind(self._indexes[kind], context, now_s)
            if entry_type is not None:
                return ListHit(kind, entry_type)
        return None

    @staticmethod
    def _match_kind(index: _ListIndex, context: AssessmentContext, now_s: float) -> ListEntryType | None:
        candidates = [
            (ListEntryType.ACCOUNT, context.debit_account_id.lower()),
            (ListEntryType.ACCOUNT, context.credit_account_id.lower()),
            (ListEntryType.DEVICE, context.device_id),
            (ListEntryType.COUNTERPARTY, context.payee_id),
            (ListEntryType.IP_ADDRESS, _canonical_ip(context.ip_address)),
        ]
        for entry_type, value in candidates:
            if not value or (entry_type, value) not in index.exact:
                continue
            expires_at_s = index.exact[(entry_type, value)]
            if expires_at_s is None or expires_at_s > now_s:
                return entry_type
        if context.ip_address and index.networks:
            address = ipaddress.ip_address(context.ip_address)
            for network, expires_at_s in index.networks:
                if address in network and (expires_at_s is None or expires_at_s > now_s):
                    return ListEntryType.IP_ADDRESS
        return None


def _canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value)) if value else ""


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
