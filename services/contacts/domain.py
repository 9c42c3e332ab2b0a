"""Pure rules of the vault: purposes, phone-number normalisation and masking, contact validation, errors.

No I/O, no clock, no randomness: callers pass ``now`` and random bytes in. Messages and field-violation descriptions
never contain the number (they are shown to callers and logged).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

import phonenumbers

from services.contacts.limits import (
    ALERT_THRESHOLDS_MAX,
    CONSENT_REFERENCE_CHARS_MAX,
    PHONE_INPUT_CHARS_MAX,
    RETENTION_S_MAX,
)
from services.kit.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    first_differing_field,
)
from services.kit.ids import parse_uuid

# --- errors ----------------------------------------------------------------------------------------------------


class PhoneNumberInvalid(InvalidArgument):
    reason = "PHONE_NUMBER_INVALID"


class ConsentMissing(InvalidArgument):
    reason = "CONSENT_MISSING"


class PurposeNotAllowed(PermissionDenied):
    reason = "PURPOSE_NOT_ALLOWED"


class SubjectErased(FailedPrecondition):
    reason = "SUBJECT_ERASED"

    def __init__(self) -> None:
        super().__init__("the data subject was erased; the data is crypto-shredded")


class ContactAlreadyExists(AlreadyExists):
    reason = "CONTACT_ALREADY_EXISTS"

    def __init__(self) -> None:
        super().__init__("the subject already has this phone number stored")


class ContactNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("contact not found")


class KeyRotationInProgress(FailedPrecondition):
    reason = "KEY_ROTATION_IN_PROGRESS"

    def __init__(self) -> None:
        super().__init__("a key rotation or reindex is already running")


class KeyVersionUnavailable(FailedPrecondition):
    reason = "KEY_VERSION_UNAVAILABLE"


class CiphertextInvalid(DataLoss):
    """A stored ciphertext or wrapped key failed authentication: tampered, or decrypted with the wrong key."""

    reason = "CIPHERTEXT_INVALID"

    def __init__(self) -> None:
        super().__init__("stored data failed its integrity check")


class RestoreTargetNotEmpty(FailedPrecondition):
    reason = "RESTORE_TARGET_NOT_EMPTY"

    def __init__(self) -> None:
        super().__init__("a restore needs an empty vault database")


class BackupInvalid(DataLoss):
    reason = "BACKUP_INVALID"

    def __init__(self, what: str) -> None:
        super().__init__(f"the backup failed its check: {what}")


# --- purposes ----------------------------------------------------------------------------------------------------


class Purpose(enum.IntEnum):
    """Why a number was collected (values match ``wallet.contacts.v1.Purpose``)."""

    TRANSACTION_ALERTS = 1
    LOGIN_OTP = 2
    PAYEE_LOOKUP = 3
    SUPPORT = 4


class RevealPurpose(enum.IntEnum):
    """Why a plaintext is read (values match ``wallet.contacts.v1.RevealPurpose``)."""

    SUPPORT_CALL = 1
    FRAUD_INVESTIGATION = 2
    LEGAL_REQUEST = 3
    SUBJECT_REQUEST = 4


# Which collection purposes allow each reveal purpose (the proto's table); None = any collection purpose.
REVEAL_ALLOWED_BY: dict[RevealPurpose, frozenset[Purpose] | None] = {
    RevealPurpose.SUPPORT_CALL: frozenset({Purpose.SUPPORT}),
    RevealPurpose.FRAUD_INVESTIGATION: frozenset({Purpose.TRANSACTION_ALERTS, Purpose.PAYEE_LOOKUP}),
    RevealPurpose.LEGAL_REQUEST: None,
    RevealPurpose.SUBJECT_REQUEST: None,
}


def check_reveal_purpose(reveal_purpose: RevealPurpose, collected_for: frozenset[Purpose]) -> None:
    allowed_by = REVEAL_ALLOWED_BY[reveal_purpose]
    if allowed_by is not None and not (allowed_by & collected_for):
        raise PurposeNotAllowed(f"the contact was not collected for a purpose that allows {reveal_purpose.name}")


def parse_purposes(values: Sequence[int], field: str, violations: list[FieldViolation]) -> frozenset[Purpose]:
    purposes: set[Purpose] = set()
    for index, value in enumerate(values):
        try:
            purposes.add(Purpose(value))
        except ValueError:
            violations.append(FieldViolation(f"{field}[{index}]", "is not a purpose on the fixed list"))
    if not values:
        violations.append(FieldViolation(field, "at least one purpose is required"))
    return frozenset(purposes)


# --- phone numbers --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A normalised number. ``repr`` never shows it, so a stray log of the object leaks nothing."""

    e164: str
    region_code: str
    country_code: int
    national_number: str

    def __repr__(self) -> str:
        return f"PhoneNumber(region_code={self.region_code!r}, masked={self.masked!r})"

    @property
    def masked(self) -> str:
        return mask_national_number(self.country_code, self.national_number)


_REGION_SHAPE = re.compile(r"^[A-Za-z]{2}$")
# Masking keeps at least this many digits hidden, and shows at most 3 leading and 4 trailing ones.
MASKED_DIGITS_MIN = 4
VISIBLE_PREFIX_MAX = 3
VISIBLE_SUFFIX_MAX = 4


def mask_national_number(country_code: int, national_number: str) -> str:
    """``+86 138****5678``: the country code, then the national number with at least four digits hidden; up to the
    first three and the last four digits stay visible, fewer for short numbers (``+65 ****4567``)."""
    length = len(national_number)
    suffix = min(VISIBLE_SUFFIX_MAX, max(0, length - MASKED_DIGITS_MIN))
    prefix = max(0, min(VISIBLE_PREFIX_MAX, length - suffix - MASKED_DIGITS_MIN))
    hidden = length - prefix - suffix
    visible_tail = national_number[length - suffix :] if suffix else ""
    return f"+{country_code} {national_number[:prefix]}{'*' * hidden}{visible_tail}"


def parse_phone_number(
    raw: str, region_hint: str, violations: list[FieldViolation], *, field: str = "phone_number"
) -> PhoneNumber | None:
    """Normalises a number in any common format to E.164; a violation (never echoing the number) when it cannot be
    parsed or is not a possible, valid number."""
    if region_hint and not _REGION_SHAPE.match(region_hint):
        violations.append(FieldViolation("region_hint", "must be an ISO 3166-1 alpha-2 region code"))
        return None
    if raw.strip() == "":
        violations.append(FieldViolation(field, "is required"))
        return None
    if len(raw) > PHONE_INPUT_CHARS_MAX:
        violations.append(FieldViolation(field, f"must be at most {PHONE_INPUT_CHARS_MAX} characters"))
        return None
    try:
        parsed = phonenumbers.parse(raw, region_hint.upper() if region_hint else None)
    except phonenumbers.NumberParseException:
        violations.append(FieldViolation(field, "cannot be parsed as a phone number (give a region_hint?)"))
        return None
    # is_valid_number(n) is is_valid_number_for_region(n, region_code_for_number(n)): finding the region once saves
    # the second lookup (for +1 numbers that lookup tries every NANP region, ~40 µs).
    region = phonenumbers.region_code_for_number(parsed)
    if (
        region is None
        or not phonenumbers.is_possible_number(parsed)
        or not phonenumbers.is_valid_number_for_region(parsed, region)
    ):
        violations.append(FieldViolation(field, "is not a valid phone number for its region"))
        return None
    return PhoneNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region_code=region,
        country_code=int(parsed.country_code or 0),
        national_number=phonenumbers.national_significant_number(parsed),
    )


def phone_from_e164(e164: str) -> PhoneNumber:
    """Rebuilds a stored (already validated) number; used after decryption inside the vault."""
    parsed = phonenumbers.parse(e164, None)
    return PhoneNumber(
        e164=e164,
        region_code=phonenumbers.region_code_for_number(parsed) or "",
        country_code=int(parsed.country_code or 0),
        national_number=phonenumbers.national_significant_number(parsed),
    )


# --- contacts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertThreshold:
    currency: str
    amount_minor: int


_CURRENCY_SHAPE = re.compile(r"^[A-Z][A-Z0-9]{2,9}$")


def parse_alert_thresholds(
    values: Sequence[tuple[str, int]], purposes: frozenset[Purpose], violations: list[FieldViolation]
) -> tuple[AlertThreshold, ...]:
    thresholds: list[AlertThreshold] = []
    seen: set[str] = set()
    if len(values) > ALERT_THRESHOLDS_MAX:
        violations.append(FieldViolation("alert_thresholds", f"at most {ALERT_THRESHOLDS_MAX}"))
    for index, (currency, amount_minor) in enumerate(values):
        field = f"alert_thresholds[{index}]"
        if not _CURRENCY_SHAPE.match(currency):
            violations.append(FieldViolation(f"{field}.currency", "must be an ISO 4217 or tenant asset code"))
        elif currency in seen:
            violations.append(FieldViolation(f"{field}.currency", "one threshold per currency"))
        if amount_minor < 0:
            violations.append(FieldViolation(f"{field}.amount_minor", "must not be negative"))
        seen.add(currency)
        thresholds.append(AlertThreshold(currency, amount_minor))
    if values and Purpose.TRANSACTION_ALERTS not in purposes:
        violations.append(FieldViolation("alert_thresholds", "need the purpose PURPOSE_TRANSACTION_ALERTS"))
    return tuple(thresholds)


def check_retention(retention_s: int | None, violations: list[FieldViolation]) -> int:
    if retention_s is None:
        violations.append(FieldViolation("retention", "is required"))
        return 0
    if retention_s <= 0 or retention_s > RETENTION_S_MAX:
        violations.append(FieldViolation("retention", "must be positive and at most 10 years"))
    return retention_s


def check_consent(consent_reference: str, violations: list[FieldViolation]) -> str:
    value = consent_reference.strip()
    if value == "":
        violations.append(FieldViolation("consent_reference", "is required"))
    elif len(value) > CONSENT_REFERENCE_CHARS_MAX:
        violations.append(FieldViolation("consent_reference", f"at most {CONSENT_REFERENCE_CHARS_MAX} characters"))
    return value


def contact_invalid(violations: Sequence[FieldViolation]) -> InvalidArgument:
    """One error listing every violation; its reason names the most specific problem (number, then consent)."""
    assert violations
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    fields = {v.field for v in violations}
    if "phone_number" in fields:
        return PhoneNumberInvalid(f"invalid request: {summary}", field_violations=violations)
    if "consent_reference" in fields:
        return ConsentMissing(f"invalid request: {summary}", field_violations=violations)
    return InvalidArgument(f"invalid request: {summary}", field_violations=violations)


@dataclass(frozen=True, slots=True)
class ContactDraft:
    """A validated StoreContact request."""

    contact_id: UUID
    customer_id: UUID
    phone: PhoneNumber
    purposes: frozenset[Purpose]
    consent_reference: str
    retention_s: int
    alert_thresholds: tuple[AlertThreshold, ...]


@dataclass(frozen=True, slots=True)
class StoreContactInput:
    contact_id: str
    customer_id: str
    phone_number: str
    region_hint: str
    purposes: tuple[int, ...]
    consent_reference: str
    retention_s: int | None
    alert_thresholds: tuple[tuple[str, int], ...]


def validate_store_contact(request: StoreContactInput) -> ContactDraft:
    """Collects every violation of a StoreContact request; ``customer_id`` must already be resolved."""
    violations: list[FieldViolation] = []
    contact_id = parse_uuid(request.contact_id, "contact_id", violations)
    customer_id = parse_uuid(request.customer_id, "customer_id", violations)
    phone = parse_phone_number(request.phone_number, request.region_hint, violations)
    purposes = parse_purposes(request.purposes, "purposes", violations)
    consent = check_consent(request.consent_reference, violations)
    retention_s = check_retention(request.retention_s, violations)
    thresholds = parse_alert_thresholds(request.alert_thresholds, purposes, violations)
    if violations:
        raise contact_invalid(violations)
    assert contact_id is not None
    assert customer_id is not None
    assert phone is not None
    return ContactDraft(contact_id, customer_id, phone, purposes, consent, retention_s, thresholds)


@dataclass(frozen=True, slots=True)
class Contact:
    """A stored contact as the vault reads it back (the number stays encrypted until masked or revealed)."""

    organization_id: UUID
    contact_id: UUID
    customer_id: UUID
    phone_ciphertext: bytes | None
    region_code: str
    purposes: frozenset[Purpose]
    consent_reference: str
    retention_s: int
    retain_until: datetime
    alert_thresholds: tuple[AlertThreshold, ...]
    discoverable: bool
    default_account_id: UUID | None
    discoverable_account_ids: tuple[UUID, ...]
    request_digest: bytes
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    erased: bool


def retain_until(now: datetime, retention_s: int) -> datetime:
    return now + timedelta(seconds=retention_s)


def store_request_canonical(draft: ContactDraft) -> bytes:
    """The content a StoreContact replay must repeat; hashed under a key (it contains the number)."""
    thresholds = ",".join(f"{t.currency}:{t.amount_minor}" for t in draft.alert_thresholds)
    purposes = ",".join(str(int(p)) for p in sorted(draft.purposes))
    parts = [str(draft.customer_id), draft.phone.e164, purposes, draft.consent_reference, str(draft.retention_s)]
    return "|".join([*parts, thresholds]).encode()


def first_difference(stored: Contact, draft: ContactDraft, same_number: bool) -> str | None:
    """The first field a replay of StoreContact changed, or None when it is the same request."""
    return first_differing_field(
        [
            ("customer_id", draft.customer_id, stored.customer_id),
            # The stored number is ciphertext: the caller compares it (decrypted) and passes the answer.
            ("phone_number", same_number, True),
            ("purposes", draft.purposes, stored.purposes),
            ("consent_reference", draft.consent_reference, stored.consent_reference),
            ("retention", draft.retention_s, stored.retention_s),
            ("alert_thresholds", draft.alert_thresholds, stored.alert_thresholds),
        ]
    )


@dataclass(frozen=True, slots=True)
class UpdateContactInput:
    contact_id: str
    request_id: str
    paths: tuple[str, ...]
    phone_number: str
    region_hint: str
    purposes: tuple[int, ...]
    consent_reference: str
    retention_s: int | None
    alert_thresholds: tuple[tuple[str, int], ...]


UPDATABLE_PATHS = frozenset(
    {"phone_number", "region_hint", "purposes", "consent_reference", "retention", "alert_thresholds"}
)


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """A validated UpdateContact request: ``None`` for fields outside the update mask."""

    contact_id: UUID
    request_id: UUID
    paths: frozenset[str]
    phone: PhoneNumber | None
    purposes: frozenset[Purpose] | None
    consent_reference: str | None
    retention_s: int | None
    alert_thresholds: tuple[tuple[str, int], ...] | None


def validate_update(request: UpdateContactInput) -> ContactUpdate:
    violations: list[FieldViolation] = []
    contact_id = parse_uuid(request.contact_id, "contact_id", violations)
    request_id = parse_uuid(request.request_id, "request_id", violations)
    paths = frozenset(request.paths)
    if not paths:
        violations.append(FieldViolation("update_mask", "name at least one field"))
    for path in sorted(paths - UPDATABLE_PATHS):
        violations.append(FieldViolation("update_mask", f"{path} cannot be updated"))
    phone = None
    if "phone_number" in paths:
        phone = parse_phone_number(request.phone_number, request.region_hint, violations)
    purposes = parse_purposes(request.purposes, "purposes", violations) if "purposes" in paths else None
    consent = check_consent(request.consent_reference, violations) if "consent_reference" in paths else None
    retention_s = check_retention(request.retention_s, violations) if "retention" in paths else None
    if violations:
        raise contact_invalid(violations)
    assert contact_id is not None
    assert request_id is not None
    thresholds = request.alert_thresholds if "alert_thresholds" in paths else None
    return ContactUpdate(contact_id, request_id, paths, phone, purposes, consent, retention_s, thresholds)


def update_request_canonical(update: ContactUpdate, request: UpdateContactInput) -> bytes:
    """What a replay of UpdateContact must repeat; hashed under a key (it may contain the number)."""
    phone = update.phone.e164 if update.phone else ""
    fields = (sorted(update.paths), phone, sorted(request.purposes), update.consent_reference, update.retention_s)
    return repr((*fields, request.alert_thresholds)).encode()


def apply_update(contact: Contact, update: ContactUpdate, now: datetime) -> Contact:
    """The contact with the update applied; thresholds are checked against the resulting purposes, and removing
    PURPOSE_PAYEE_LOOKUP ends discoverability."""
    purposes = update.purposes if update.purposes is not None else contact.purposes
    threshold_values = update.alert_thresholds
    if threshold_values is None:
        threshold_values = tuple((t.currency, t.amount_minor) for t in contact.alert_thresholds)
    violations: list[FieldViolation] = []
    thresholds = parse_alert_thresholds(threshold_values, purposes, violations)
    if violations:
        raise contact_invalid(violations)
    discoverable = contact.discoverable and Purpose.PAYEE_LOOKUP in purposes
    retention_changed = update.retention_s is not None
    return replace(
        contact,
        purposes=purposes,
        consent_reference=update.consent_reference or contact.consent_reference,
        retention_s=update.retention_s if update.retention_s is not None else contact.retention_s,
        retain_until=retain_until(now, update.retention_s or 0) if retention_changed else contact.retain_until,
        alert_thresholds=thresholds,
        discoverable=discoverable,
        default_account_id=contact.default_account_id if discoverable else None,
        discoverable_account_ids=contact.discoverable_account_ids if discoverable else (),
        region_code=update.phone.region_code if update.phone is not None else contact.region_code,
    )
