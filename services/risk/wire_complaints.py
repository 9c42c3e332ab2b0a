"""Proto ⇄ domain conversions for complaints (no rules here: names, enums, timestamps, money)."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2

from services.risk.domain_complaints import (
    ComplaintCategory,
    ComplaintEvent,
    ComplaintNote,
    ComplaintOutcome,
    ComplaintReport,
    ComplaintStatus,
    NoteVisibility,
    Refund,
    ReportRow,
)
from services.risk.service_complaints import ShownComplaint
from wallet.common.v1 import money_pb2
from wallet.risk.v1 import risk_complaints_pb2


def category(value: int) -> ComplaintCategory | None:
    """Domain value of a proto enum number; None for UNSPECIFIED or an unknown number (validation reports it)."""
    try:
        return ComplaintCategory(value) if value else None
    except ValueError:
        return None


def status(value: int) -> ComplaintStatus | None:
    try:
        return ComplaintStatus(value) if value else None
    except ValueError:
        return None


def outcome(value: int) -> ComplaintOutcome | None:
    try:
        return ComplaintOutcome(value) if value else None
    except ValueError:
        return None


def visibility(value: int) -> NoteVisibility | None:
    try:
        return NoteVisibility(value) if value else None
    except ValueError:
        return None


def refund(amount: money_pb2.Money, present: bool) -> Refund | None:
    return Refund(amount.amount_minor, amount.currency) if present else None


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    """Whole microseconds: what Postgres keeps, so an answer built from memory equals a later one read back (a float
    near 2e9 s cannot hold nanoseconds anyway)."""
    if seconds is None:
        return None
    value = timestamp_pb2.Timestamp()
    value.FromMicroseconds(round(seconds * 1e6))
    return value


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromMicroseconds(round(seconds * 1e6))
    return value


def _note(note: ComplaintNote) -> risk_complaints_pb2.ComplaintNote:
    return risk_complaints_pb2.ComplaintNote(
        complaint_note_id=note.complaint_note_id,
        author_principal_id=note.author_principal_id,
        from_customer=note.from_customer,
        visibility=note.visibility.value,  # type: ignore[arg-type]
        text=note.text,
        created_at=timestamp(note.created_at_s),
    )


def complaint_to_proto(shown: ShownComplaint) -> risk_complaints_pb2.Complaint:
    complaint, sla = shown.complaint, shown.sla
    message = risk_complaints_pb2.Complaint(
        complaint_id=complaint.complaint_id,
        reference_number=complaint.reference_number,
        customer_id=complaint.customer_id,
        category=complaint.category.value,  # type: ignore[arg-type]
        status=complaint.status.value,  # type: ignore[arg-type]
        transfer_id=complaint.transfer_id,
        card_id=complaint.card_id,
        description=complaint.description,
        attachment_references=list(complaint.attachment_references),
        sla=risk_complaints_pb2.ComplaintSla(
            acknowledge_due_at=timestamp(sla.acknowledge_due_at_s),
            acknowledged_at=timestamp(sla.acknowledged_at_s),
            resolve_due_at=timestamp(sla.resolve_due_at_s),
            resolve_time_left=_duration(sla.resolve_time_left_s),
            acknowledge_breached=sla.acknowledge_breached,
            resolve_breached=sla.resolve_breached,
        ),
        escalation_level=complaint.escalation_level,
        notes=[_note(note) for note in complaint.notes],
        opened_by_principal_id=complaint.opened_by_principal_id,
        opened_at=timestamp(complaint.opened_at_s),
        updated_at=timestamp(complaint.updated_at_s),
    )
    if complaint.resolved_at_s is not None:
        assert complaint.outcome is not None
        resolution = risk_complaints_pb2.ComplaintResolution(
            outcome=complaint.outcome.value,  # type: ignore[arg-type]
            reason=complaint.resolution_reason,
            refund_transfer_id=complaint.refund_transfer_id,
            resolved_by_principal_id=complaint.resolved_by_principal_id,
            resolved_at=timestamp(complaint.resolved_at_s),
        )
        if complaint.refund is not None:
            resolution.refund_amount.CopyFrom(
                money_pb2.Money(currency=complaint.refund.currency, amount_minor=complaint.refund.amount_minor)
            )
        message.resolution.CopyFrom(resolution)
    return message


def _report_row(row: ReportRow) -> risk_complaints_pb2.ComplaintReportRow:
    under_1d, from_1d, from_7d, over_15d = row.open_by_age
    return risk_complaints_pb2.ComplaintReportRow(
        category=row.category.value,  # type: ignore[arg-type]
        status=row.status.value,  # type: ignore[arg-type]
        count=row.count,
        acknowledge_breached_count=row.acknowledge_breached,
        resolve_breached_count=row.resolve_breached,
        open_age_under_1d_count=under_1d,
        open_age_1d_to_7d_count=from_1d,
        open_age_7d_to_15d_count=from_7d,
        open_age_over_15d_count=over_15d,
    )


def report_to_proto(report: ComplaintReport) -> risk_complaints_pb2.GetComplaintReportResponse:
    return risk_complaints_pb2.GetComplaintReportResponse(
        rows=[_report_row(row) for row in report.rows],
        open_total=report.open_total,
        breached_total=report.breached_total,
        generated_at=timestamp(report.generated_at_s),
    )


def event_to_proto(event: ComplaintEvent) -> risk_complaints_pb2.ComplaintEvent:
    occurred_at = timestamp_pb2.Timestamp()
    occurred_at.FromDatetime(event.occurred_at)
    return risk_complaints_pb2.ComplaintEvent(
        complaint_id=event.complaint_id,
        event_number=event.event_number,
        action=event.action,
        actor_principal_id=event.actor_principal_id,
        trace_id=event.trace_id,
        occurred_at=occurred_at,
        category=event.category.value,  # type: ignore[arg-type]
    )
