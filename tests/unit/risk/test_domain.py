"""Pure rules of the risk domain: context validation, lists, case transitions."""

from __future__ import annotations

import uuid

import pytest

from services.kit.errors import InvalidArgument
from services.risk.domain import (
    AssessmentContext,
    AssessmentRecord,
    AssessmentResult,
    CaseAlreadyResolved,
    CaseResolution,
    CaseStatus,
    Decision,
    ListEntryType,
    ListKind,
    ReviewCase,
    resolved_status,
    validate_context,
)
from services.risk.domain_lists import ListEntry, ListMatcher, validate_list_entry

A, B = str(uuid.uuid4()), str(uuid.uuid4())


def _fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.field_violations}


def test_a_valid_context_passes() -> None:
    assert str(validate_context(A, AssessmentContext(A, B, 1, "EUR"))) == A


def test_every_bad_field_is_named() -> None:
    context = AssessmentContext(A, A, 0, "eu", device_id="x" * 200, ip_address="not-an-ip")
    with pytest.raises(InvalidArgument) as raised:
        validate_context("", context)
    assert _fields(raised.value) == {
        "assessment_id",
        "context.credit_account_id",
        "context.amount.amount_minor",
        "context.amount.currency",
        "context.device_id",
        "context.ip_address",
    }


def test_amount_limits() -> None:
    validate_context(A, AssessmentContext(A, B, 10**15, "EUR"))
    with pytest.raises(InvalidArgument):
        validate_context(A, AssessmentContext(A, B, 10**15 + 1, "EUR"))


def test_digest_changes_with_content() -> None:
    assert AssessmentContext(A, B, 1, "EUR").digest() == AssessmentContext(A, B, 1, "EUR").digest()
    assert AssessmentContext(A, B, 1, "EUR").digest() != AssessmentContext(A, B, 2, "EUR").digest()


def test_digest_ignores_how_the_caller_authenticated() -> None:
    # The ledger retries a CHALLENGEd transfer with the same id and a step-up token: the same payment.
    weak = AssessmentContext(A, B, 1, "EUR", acr="pwd", amr=("pwd",), auth_time_s=1, device_id="d1")
    strong = AssessmentContext(A, B, 1, "EUR", acr="mfa", amr=("pwd", "otp"), auth_time_s=99, device_id="d2")
    assert weak.digest() == strong.digest()
    assert weak.digest() != AssessmentContext(A, B, 1, "EUR", counterparty_id="x").digest()


def _entry(kind: ListKind, entry_type: ListEntryType, value: str, expires_at_s: float | None = None) -> ListEntry:
    return ListEntry(str(uuid.uuid4()), kind, entry_type, value, "why", expires_at_s)


def test_block_beats_allow_and_expired_entries_do_not_match() -> None:
    matcher = ListMatcher(
        [
            _entry(ListKind.ALLOW, ListEntryType.ACCOUNT, A),
            _entry(ListKind.BLOCK, ListEntryType.DEVICE, "dev-1"),
            _entry(ListKind.BLOCK, ListEntryType.COUNTERPARTY, "payee-9", expires_at_s=100.0),
            _entry(ListKind.BLOCK, ListEntryType.IP_ADDRESS, "10.0.0.0/8"),
        ]
    )
    allowed = matcher.match(AssessmentContext(A, B, 1, "EUR"), 50.0)
    assert allowed is not None
    assert allowed.reason_code == "ALLOWLIST_ACCOUNT"
    blocked = matcher.match(AssessmentContext(A, B, 1, "EUR", device_id="dev-1"), 50.0)
    assert blocked is not None
    assert blocked.reason_code == "BLOCKLIST_DEVICE"
    payee = AssessmentContext(B, A.upper(), 1, "EUR", counterparty_id="payee-9")
    hit = matcher.match(payee, 50.0)
    assert hit is not None
    assert hit.reason_code == "BLOCKLIST_COUNTERPARTY"
    later = matcher.match(payee, 150.0)
    assert later is not None
    assert later.reason_code == "ALLOWLIST_ACCOUNT"  # the credit account matches, case-insensitively
    network = matcher.match(AssessmentContext(B, str(uuid.uuid4()), 1, "EUR", ip_address="10.2.3.4"), 0.0)
    assert network is not None
    assert network.reason_code == "BLOCKLIST_IP"
    assert matcher.match(AssessmentContext(B, str(uuid.uuid4()), 1, "EUR", ip_address="11.0.0.1"), 0.0) is None


def test_list_entries_are_validated_and_normalized() -> None:
    entry = validate_list_entry(_entry(ListKind.BLOCK, ListEntryType.IP_ADDRESS, "192.168.1.7/32"), 0.0)
    assert entry.value == "192.168.1.7"
    with pytest.raises(InvalidArgument) as raised:
        validate_list_entry(ListEntry("x", ListKind.BLOCK, ListEntryType.ACCOUNT, "nope", "", 1.0), 5.0)
    assert _fields(raised.value) == {"list_entry_id", "value", "reason", "expires_at"}


def _case(status: CaseStatus, request_id: str = "") -> ReviewCase:
    context = AssessmentContext(A, B, 1, "EUR")
    result = AssessmentResult(A, Decision.REVIEW, 70, (), 0, 1, 0, True, 0.0, context.digest())
    return ReviewCase(
        A, "t", AssessmentRecord(A, result, context, {}), status, None, "", "", request_id, False, 0.0, None
    )


def test_case_transitions() -> None:
    assert resolved_status(_case(CaseStatus.OPEN), CaseResolution.APPROVE, "r") is CaseStatus.APPROVED
    assert resolved_status(_case(CaseStatus.OPEN), CaseResolution.REJECT, "r") is CaseStatus.REJECTED
    assert resolved_status(_case(CaseStatus.APPROVED, "r"), CaseResolution.APPROVE, "r") is None
    for closed in (CaseStatus.APPROVED, CaseStatus.REJECTED, CaseStatus.EXPIRED):
        with pytest.raises(CaseAlreadyResolved):
            resolved_status(_case(closed, "r"), CaseResolution.APPROVE, "other")
