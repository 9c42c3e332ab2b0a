"""Complaints' pure rules: business days, SLA clocks with pauses and breach flags at chosen instants, the state
machine, resolution claims, reference numbers and validation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.kit.errors import IdempotencyKeyReused, InvalidArgument
from services.risk import limits
from services.risk.domain_complaints import (
    DAY_S,
    DEFAULT_SLA,
    Complaint,
    ComplaintAlreadyResolved,
    ComplaintCategory,
    ComplaintDraft,
    ComplaintNote,
    ComplaintOutcome,
    ComplaintStateInvalid,
    ComplaintStatus,
    NoteVisibility,
    Refund,
    ResolutionRequest,
    SlaPolicy,
    acknowledge,
    add_business_days,
    add_note,
    begin_resolution,
    check_open_replay,
    derived_id,
    escalate,
    finish_resolution,
    new_complaint,
    notification_message,
    reference_number,
    release_resolution,
    request_information,
    sla_view,
    validate_draft,
    validate_period,
    validate_resolution,
)

HOUR_S = 3600.0


def at(text: str) -> float:
    """Seconds of an ISO instant in UTC (``2026-03-06T15:00``)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M")


def draft(**changes: object) -> ComplaintDraft:
    base = ComplaintDraft(
        complaint_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        category=ComplaintCategory.TRANSFER,
        transfer_id=str(uuid.uuid4()),
        card_id="",
        description="The payment went out twice.",
        attachment_references=("doc-1",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def opened(now_s: float, policy: SlaPolicy = DEFAULT_SLA) -> Complaint:
    return new_complaint(draft(), reference="CMP-2026-000001", opened_by="customer-1", now_s=now_s, policy=policy)


def resolution(complaint: Complaint, **changes: object) -> ResolutionRequest:
    base = ResolutionRequest(
        complaint_id=complaint.complaint_id,
        outcome=ComplaintOutcome.UPHELD,
        reason="Charged twice; refunded.",
        refund=Refund(500, "EUR"),
        request_id=str(uuid.uuid4()),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- business days (2026-03-02 is a Monday) ---


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        ("2026-03-02T10:00", 1, "2026-03-03T10:00"),  # Monday -> Tuesday
        ("2026-03-06T15:00", 1, "2026-03-09T15:00"),  # Friday -> Monday, over the weekend
        ("2026-03-07T10:00", 1, "2026-03-10T00:00"),  # Saturday counts from Monday 00:00
        ("2026-03-08T23:00", 1, "2026-03-10T00:00"),  # so does Sunday
        ("2026-03-02T10:00", 5, "2026-03-09T10:00"),  # a whole working week
        ("2026-03-02T10:00", 15, "2026-03-23T10:00"),  # three weeks
        ("2026-03-04T09:30", 0, "2026-03-04T09:30"),
    ],
)
def test_business_days_skip_weekends(start: str, days: int, due: str) -> None:
    assert iso(add_business_days(at(start), days)) == due


def test_new_complaint_gets_its_categorys_clocks() -> None:
    complaint = opened(at("2026-03-06T15:00"), SlaPolicy(2, 10))
    assert complaint.status is ComplaintStatus.RECEIVED
    assert iso(complaint.acknowledge_due_at_s) == "2026-03-10T15:00"
    assert iso(complaint.resolve_due_at_s) == "2026-03-20T15:00"


# --- SLA clocks and breach flags ---


def test_nothing_is_breached_before_the_due_instants() -> None:
    start = at("2026-03-02T10:00")
    complaint = opened(start)
    view = sla_view(complaint, start + HOUR_S)
    assert not view.acknowledge_breached
    assert not view.resolve_breached
    assert view.resolve_time_left_s == complaint.resolve_due_at_s - (start + HOUR_S)


def test_acknowledge_clock_breaches_after_one_business_day() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    assert not sla_view(complaint, at("2026-03-03T09:59")).acknowledge_breached
    assert sla_view(complaint, at("2026-03-03T10:01")).acknowledge_breached


def test_a_late_acknowledgement_stays_breached_and_an_early_one_never_breaches() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    late = acknowledge(complaint, str(uuid.uuid4()), at("2026-03-04T10:00"))
    early = acknowledge(complaint, str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert late is not None
    assert early is not None
    assert sla_view(late, at("2026-03-05T10:00")).acknowledge_breached
    assert not sla_view(early, at("2026-03-30T10:00")).acknowledge_breached


def test_resolve_clock_breaches_after_fifteen_business_days_with_zero_time_left() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    before = sla_view(complaint, at("2026-03-23T09:00"))
    after = sla_view(complaint, at("2026-03-23T11:00"))
    assert not before.resolve_breached
    assert before.resolve_time_left_s == HOUR_S
    assert after.resolve_breached
    assert after.resolve_time_left_s == 0


def test_waiting_for_the_customer_pauses_the_resolve_clock() -> None:
    start = at("2026-03-02T10:00")
    acknowledged = acknowledge(opened(start), str(uuid.uuid4()), start + HOUR_S)
    assert acknowledged is not None
    waiting = request_information(acknowledged, start + DAY_S)
    assert waiting.status is ComplaintStatus.AWAITING_CUSTOMER
    # Ten calendar days of waiting, past the original due instant: no breach, and the due instant moved with time.
    view = sla_view(waiting, at("2026-03-30T10:00"))
    assert not view.resolve_breached
    assert view.resolve_due_at_s > at("2026-03-30T10:00")
    assert view.resolve_time_left_s == waiting.resolve_due_at_s - (start + DAY_S)
    # The customer answers after 10 days: the due instant is 10 days later than before.
    answer = note(from_customer=True, created_at_s=start + 11 * DAY_S)
    answered = add_note(waiting, answer, start + 11 * DAY_S)
    assert answered.status is ComplaintStatus.IN_PROGRESS
    assert answered.awaiting_since_s is None
    assert answered.resolve_due_at_s == waiting.resolve_due_at_s + 10 * DAY_S
    assert not sla_view(answered, answered.resolve_due_at_s - 1).resolve_breached
    assert sla_view(answered, answered.resolve_due_at_s + 1).resolve_breached


def test_a_wait_that_starts_after_the_breach_keeps_it_breached() -> None:
    start = at("2026-03-02T10:00")
    acknowledged = acknowledge(opened(start), str(uuid.uuid4()), start + HOUR_S)
    assert acknowledged is not None
    late_wait = request_information(acknowledged, acknowledged.resolve_due_at_s + HOUR_S)
    view = sla_view(late_wait, late_wait.resolve_due_at_s + 5 * DAY_S)
    assert view.resolve_breached
    assert view.resolve_time_left_s == 0


def test_a_resolved_complaint_is_judged_at_its_resolution_and_has_no_time_left() -> None:
    start = at("2026-03-02T10:00")
    acknowledged = acknowledge(opened(start), str(uuid.uuid4()), start + HOUR_S)
    assert acknowledged is not None
    request = resolution(acknowledged, refund=None)
    claimed = begin_resolution(acknowledged, request, "approver-1")
    assert claimed is not None
    done = finish_resolution(claimed, "", start + 2 * DAY_S)
    assert done is not None
    view = sla_view(done, start + 100 * DAY_S)  # long after: still on time, because it was resolved on time
    assert not view.resolve_breached
    assert not view.acknowledge_breached
    assert view.resolve_time_left_s == 0


# --- state machine ---


def note(*, from_customer: bool = False, created_at_s: float = 0.0, text: str = "More details.") -> ComplaintNote:
    return ComplaintNote(
        complaint_note_id=str(uuid.uuid4()),
        author_principal_id="someone",
        from_customer=from_customer,
        visibility=NoteVisibility.CUSTOMER if from_customer else NoteVisibility.INTERNAL,
        text=text,
        created_at_s=created_at_s,
    )


def test_acknowledge_only_a_received_complaint_and_replays_by_request_id() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    request_id = str(uuid.uuid4())
    acknowledged = acknowledge(complaint, request_id, at("2026-03-02T11:00"))
    assert acknowledged is not None
    assert acknowledged.status is ComplaintStatus.IN_PROGRESS
    assert acknowledge(acknowledged, request_id, at("2026-03-02T12:00")) is None
    with pytest.raises(ComplaintStateInvalid) as raised:
        acknowledge(acknowledged, str(uuid.uuid4()), at("2026-03-02T12:00"))
    assert raised.value.metadata == {"status": "IN_PROGRESS"}


def test_information_can_only_be_requested_while_in_progress() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    with pytest.raises(ComplaintStateInvalid):
        request_information(complaint, at("2026-03-02T11:00"))
    acknowledged = acknowledge(complaint, str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    waiting = request_information(acknowledged, at("2026-03-02T12:00"))
    with pytest.raises(ComplaintStateInvalid):
        request_information(waiting, at("2026-03-02T13:00"))


def test_a_staff_note_does_not_end_the_wait() -> None:
    acknowledged = acknowledge(opened(at("2026-03-02T10:00")), str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    waiting = request_information(acknowledged, at("2026-03-02T12:00"))
    assert add_note(waiting, note(), at("2026-03-03T12:00")).status is ComplaintStatus.AWAITING_CUSTOMER


def test_escalation_raises_the_level_of_an_open_complaint_only() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    twice = escalate(escalate(complaint, at("2026-03-02T11:00")), at("2026-03-02T12:00"))
    assert twice.escalation_level == 2
    assert twice.status is ComplaintStatus.RECEIVED


def test_resolve_needs_an_acknowledged_complaint() -> None:
    complaint = opened(at("2026-03-02T10:00"))
    with pytest.raises(ComplaintStateInvalid):
        begin_resolution(complaint, resolution(complaint), "approver-1")


def test_a_claim_blocks_other_requests_and_replays_its_own() -> None:
    acknowledged = acknowledge(opened(at("2026-03-02T10:00")), str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    request = resolution(acknowledged)
    claimed = begin_resolution(acknowledged, request, "approver-1")
    assert claimed is not None
    assert claimed.status is ComplaintStatus.IN_PROGRESS  # the outcome is recorded only after the refund
    assert begin_resolution(claimed, request, "approver-1") is None
    with pytest.raises(IdempotencyKeyReused) as reused:
        begin_resolution(claimed, replace(request, refund=Refund(900, "EUR")), "approver-1")
    assert reused.value.metadata["field"] == "refund_amount"
    with pytest.raises(ComplaintAlreadyResolved):
        begin_resolution(claimed, resolution(acknowledged), "approver-2")
    with pytest.raises(ComplaintAlreadyResolved):  # no other step while a resolution is under way
        escalate(claimed, at("2026-03-02T12:00"))


def test_finished_resolution_is_final_and_a_second_decision_is_refused() -> None:
    acknowledged = acknowledge(opened(at("2026-03-02T10:00")), str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    request = resolution(acknowledged)
    claimed = begin_resolution(acknowledged, request, "approver-1")
    assert claimed is not None
    done = finish_resolution(claimed, "reversal-1", at("2026-03-03T11:00"))
    assert done is not None
    assert done.status is ComplaintStatus.UPHELD
    assert done.refund_transfer_id == "reversal-1"
    assert finish_resolution(done, "reversal-1", at("2026-03-03T12:00")) is None
    with pytest.raises(ComplaintAlreadyResolved) as raised:
        begin_resolution(done, resolution(done), "approver-2")
    assert raised.value.reason == "COMPLAINT_ALREADY_RESOLVED"
    with pytest.raises(ComplaintAlreadyResolved):
        add_note(done, note(), at("2026-03-04T12:00"))


def test_resolving_from_the_wait_ends_the_pause() -> None:
    acknowledged = acknowledge(opened(at("2026-03-02T10:00")), str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    waiting = request_information(acknowledged, at("2026-03-03T11:00"))
    claimed = begin_resolution(waiting, resolution(waiting, outcome=ComplaintOutcome.REJECTED, refund=None), "a")
    assert claimed is not None
    done = finish_resolution(claimed, "", at("2026-03-05T11:00"))
    assert done is not None
    assert done.status is ComplaintStatus.REJECTED
    assert done.awaiting_since_s is None
    assert done.resolve_due_at_s == waiting.resolve_due_at_s + 2 * DAY_S


def test_a_released_claim_lets_another_decision_through() -> None:
    acknowledged = acknowledge(opened(at("2026-03-02T10:00")), str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    claimed = begin_resolution(acknowledged, resolution(acknowledged), "approver-1")
    assert claimed is not None
    released = release_resolution(claimed)
    assert released.resolve_request_id == ""
    assert begin_resolution(released, resolution(released, refund=None), "approver-2") is not None


def test_a_refund_needs_a_transfer() -> None:
    complaint = new_complaint(
        draft(category=ComplaintCategory.SERVICE, transfer_id=""),
        reference="CMP-2026-000002",
        opened_by="c",
        now_s=at("2026-03-02T10:00"),
        policy=DEFAULT_SLA,
    )
    acknowledged = acknowledge(complaint, str(uuid.uuid4()), at("2026-03-02T11:00"))
    assert acknowledged is not None
    with pytest.raises(ComplaintStateInvalid):
        begin_resolution(acknowledged, resolution(acknowledged), "approver-1")


# --- reference numbers and derived ids ---


def test_reference_numbers_are_zero_padded_per_year() -> None:
    assert reference_number(2026, 123) == "CMP-2026-000123"
    assert reference_number(2027, 1) == "CMP-2027-000001"
    assert reference_number(2026, 1_234_567) == "CMP-2026-1234567"


def test_derived_ids_are_stable_and_differ_by_request() -> None:
    namespace = uuid.uuid4()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert derived_id(namespace, first) == derived_id(namespace, first)
    assert derived_id(namespace, first) != derived_id(namespace, second)


# --- validation ---


def fields_of(error: InvalidArgument) -> set[str]:
    return {violation.field for violation in error.field_violations}


def test_draft_validation_names_every_bad_field() -> None:
    bad = draft(
        complaint_id="nope",
        category=ComplaintCategory.CARD_PAYMENT,
        transfer_id="",
        card_id="x",
        description="short",
        attachment_references=tuple(f"doc-{n}" for n in range(limits.COMPLAINT_ATTACHMENTS_MAX + 1)),
    )
    with pytest.raises(InvalidArgument) as raised:
        validate_draft(bad)
    assert fields_of(raised.value) == {
        "complaint_id",
        "transfer_id",
        "card_id",
        "description",
        "attachment_references",
    }


@pytest.mark.parametrize(
    "description",
    ["x" * (limits.COMPLAINT_TEXT_LENGTH_MAX + 1), "nul byte \x00 in here", "          "],
)
def test_too_long_or_control_character_descriptions_are_refused(description: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_draft(draft(description=description))
    assert fields_of(raised.value) == {"description"}


def test_service_complaints_need_no_transfer() -> None:
    validate_draft(draft(category=ComplaintCategory.SERVICE, transfer_id=""))


def test_open_replay_compares_content() -> None:
    first = draft()
    stored = new_complaint(first, reference="CMP-2026-000003", opened_by="c", now_s=0.0, policy=DEFAULT_SLA)
    check_open_replay(first, stored)
    with pytest.raises(IdempotencyKeyReused) as raised:
        check_open_replay(replace(first, description="Something else entirely."), stored)
    assert raised.value.metadata["field"] == "description"


def test_resolution_validation() -> None:
    complaint = opened(0.0)
    with pytest.raises(InvalidArgument) as raised:
        validate_resolution(
            resolution(complaint, outcome=ComplaintOutcome.REJECTED, reason="", refund=Refund(0, "eur"))
        )
    assert fields_of(raised.value) == {
        "reason",
        "refund_amount",
        "refund_amount.amount_minor",
        "refund_amount.currency",
    }
    with pytest.raises(InvalidArgument):
        validate_resolution(resolution(complaint, outcome=None))


def test_report_period_validation() -> None:
    assert validate_period(10.0, 20.0) == (10.0, 20.0)
    for start, end in ((None, 20.0), (20.0, 10.0), (0.0, limits.COMPLAINT_REPORT_PERIOD_MAX_S + 1.0), (-1.0, 5.0)):
        with pytest.raises(InvalidArgument):
            validate_period(start, end)


def test_notification_messages_fit_the_vaults_parameter_limit() -> None:
    assert notification_message("Please  send\nthe receipt.") == "Please send the receipt."
    long = notification_message("word " * 100)
    assert len(long) == limits.NOTIFICATION_PARAM_LENGTH_MAX
    assert long.endswith("…")


def test_sla_policies_must_be_ordered() -> None:
    with pytest.raises(AssertionError):
        SlaPolicy(5, 2)
