"""Use cases for complaints and disputes: one async method per RPC, plus the notification hand-over.

Who may do what: the method options grant the permission (customers and support write, support administers,
approvers resolve); this module adds ownership — a customer opens, reads, lists and annotates only their own
complaints and sees only CUSTOMER-visible notes; another customer's complaint is NOT_FOUND like another tenant's.

Money and messages leave through two ports: ``ComplaintLedger`` (the disputed transfer, read with risk's platform
token; the refund through ``LedgerService.ReverseTransfer``) and ``ComplaintNotifier`` (the contacts vault's
``SendNotification``). A step that notifies the customer writes the notification in its own transaction and hands
it over right after commit; what could not be handed over is retried by ``ComplaintJobs`` (each notification id is
sent at most once by the vault).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Protocol

from prometheus_client import Gauge

from services.kit.errors import (
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    Unavailable,
    invalid,
)
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.telemetry import current_trace_id
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, Principal
from services.risk import limits
from services.risk.config import RiskConfig
from services.risk.domain_complaints import (
    NOTIFICATION_NAMESPACE,
    REFUND_NAMESPACE,
    STEP_NOTE_NAMESPACE,
    Complaint,
    ComplaintCategory,
    ComplaintDraft,
    ComplaintNote,
    ComplaintNotFound,
    ComplaintOutcome,
    ComplaintReport,
    ComplaintStatus,
    NoteVisibility,
    Notice,
    ResolutionRequest,
    SlaView,
    Step,
    acknowledge,
    add_note,
    begin_resolution,
    check_note_replay,
    check_open_replay,
    derived_id,
    escalate,
    finish_resolution,
    new_complaint,
    release_resolution,
    request_information,
    sla_view,
    validate_draft,
    validate_note,
    validate_period,
    validate_resolution,
    validate_step,
)
from services.risk.service import Clock, Page, cursor_after, page_cursor
from services.risk.store_complaints import Audit, ComplaintStore, PendingNotification

log = logging.getLogger(__name__)

SYSTEM_ACTOR = ""
OPEN_COMPLAINTS = Gauge(
    "wallet_risk_complaints_open",
    "Open complaints (received, in progress or awaiting the customer) across tenants, by category.",
    ["category"],
)
BREACHED_COMPLAINTS = Gauge(
    "wallet_risk_complaints_breached",
    "Open complaints with a breached acknowledge or resolve SLA clock, across tenants, by category.",
    ["category"],
)


# --- ports ---


@dataclass(frozen=True, slots=True)
class DisputedTransfer:
    """What risk needs to know about a disputed transfer: whose accounts it touches, whether it is a card payment
    and the card it used (empty when the ledger does not say)."""

    transfer_id: str
    debit_customer_id: str
    credit_customer_id: str
    is_card_payment: bool
    card_id: str

    def touches(self, customer_id: str) -> bool:
        return customer_id in (self.debit_customer_id, self.credit_customer_id)


class RefundRefused(FailedPrecondition):
    """The ledger refused the refund for good (the claim is released; another decision may follow)."""


class RefundExceedsTransfer(RefundRefused):
    reason = "REVERSAL_EXCEEDS_ORIGINAL"


class RefundCurrencyMismatch(RefundRefused):
    reason = "CURRENCY_MISMATCH"


class RefundInsufficientFunds(RefundRefused):
    reason = "INSUFFICIENT_FUNDS"


class ComplaintLedger(Protocol):
    async def find_transfer(self, organization_id: str, transfer_id: str) -> DisputedTransfer | None:
        """The transfer in this tenant, or None; raises ``Unavailable``."""
        ...

    async def refund(
        self,
        *,
        organization_id: str,
        reversal_id: str,
        original_transfer_id: str,
        amount_minor: int,
        currency: str,
        complaint_id: str,
    ) -> str:
        """ReverseTransfer (reason DISPUTE_UPHELD), idempotent by ``reversal_id``; returns the reversal's id. Raises
        ``RefundRefused`` (for good) or ``Unavailable`` (retry)."""
        ...


class NotificationNotSent(Exception):
    """The vault did not take the notification (unreachable, refused, or its sink failed); retried later."""


class ComplaintNotifier(Protocol):
    async def notify(self, notification: PendingNotification) -> None: ...


class TransferNotFound(NotFound):
    pass


class UnconfiguredLedger:
    """What risk has without a platform client: complaints about a transfer cannot be checked or refunded."""

    async def find_transfer(self, organization_id: str, transfer_id: str) -> DisputedTransfer | None:
        raise Unavailable("risk has no platform client for the ledger (RISK_CLIENT_ID)")

    async def refund(
        self,
        *,
        organization_id: str,
        reversal_id: str,
        original_transfer_id: str,
        amount_minor: int,
        currency: str,
        complaint_id: str,
    ) -> str:
        raise Unavailable("risk has no platform client for the ledger (RISK_CLIENT_ID)")


class UnconfiguredNotifier:
    """Without a platform client notifications stay pending (the job retries them once one is configured)."""

    async def notify(self, notification: PendingNotification) -> None:
        raise NotificationNotSent("risk has no platform client for the contacts vault (RISK_CLIENT_ID)")


# --- what the servicer shows ---


@dataclass(frozen=True, slots=True)
class ShownComplaint:
    """A complaint as one caller may see it (customers: CUSTOMER-visible notes only) with its clocks at read time."""

    complaint: Complaint
    sla: SlaView


def whole_microseconds(moment_s: float) -> float:
    """What Postgres keeps of an instant: the complaint built in memory then equals the one read back later (a replay
    answers exactly what the first call answered)."""
    return round(moment_s, 6)


def _is_customer(principal: Principal) -> bool:
    return principal.kind == PRINCIPAL_KIND_CUSTOMER


class ComplaintService:
    def __init__(
        self,
        config: RiskConfig,
        *,
        complaints: ComplaintStore,
        ledger: ComplaintLedger,
        notifier: ComplaintNotifier,
        clock: Clock = time.time,
    ) -> None:
        self._config = config
        self._complaints = complaints
        self._ledger = ledger
        self._notifier = notifier
        self._clock = clock

    def _audit(self, principal: Principal) -> Audit:
        return Audit(principal.subject, current_trace_id(), whole_microseconds(self._clock()))

    def _shown(self, principal: Principal, complaint: Complaint, *, with_notes: bool = True) -> ShownComplaint:
        notes = complaint.visible_notes(to_customer=_is_customer(principal)) if with_notes else ()
        return ShownComplaint(replace(complaint, notes=notes), sla_view(complaint, self._clock()))

    async def _owned(self, principal: Principal, complaint_id: str) -> Complaint:
        complaint = await self._complaints.get(principal.organization_id, complaint_id)
        if _is_customer(principal) and complaint.customer_id != principal.subject:
            raise ComplaintNotFound("complaint not found")  # another customer's looks like no complaint at all
        return complaint

    # --- OpenComplaint ---

    async def open_complaint(
        self,
        principal: Principal,
        *,
        complaint_id: str,
        customer_id: str,
        category: ComplaintCategory | None,
        transfer_id: str,
        card_id: str,
        description: str,
        attachment_references: tuple[str, ...],
    ) -> ShownComplaint:
        customer = _is_customer(principal)
        draft = ComplaintDraft(
            complaint_id=complaint_id,
            customer_id=(customer_id or principal.subject) if customer else customer_id,
            category=category,
            transfer_id=transfer_id,
            card_id=card_id,
            description=description,
            attachment_references=attachment_references,
        )
        validate_draft(draft)
        if customer and draft.customer_id != principal.subject:
            raise PermissionDenied("customers open complaints for themselves only; leave customer_id empty")
        org = principal.organization_id
        stored = await self._complaints.find(org, complaint_id)
        if stored is not None:
            if customer and stored.customer_id != principal.subject:
                raise ComplaintNotFound("complaint not found")
            check_open_replay(draft, stored)
            return self._shown(principal, stored)
        if draft.transfer_id:
            draft = await self._checked_against_transfer(org, draft)
        assert draft.category is not None
        policy = self._config.complaint_sla[draft.category]
        audit = self._audit(principal)

        def build(reference: str) -> Complaint:
            return new_complaint(
                draft, reference=reference, opened_by=principal.subject, now_s=audit.now_s, policy=policy
            )

        complaint, created = await self._complaints.open(org, build, audit)
        if not created:
            check_open_replay(draft, complaint)  # a concurrent twin won
        return self._shown(principal, complaint)

    async def _checked_against_transfer(self, org: str, draft: ComplaintDraft) -> ComplaintDraft:
        """The transfer must exist in this tenant and touch the complaining customer's account (NOT_FOUND
        otherwise, whoever asks); a card-payment complaint needs a card payment, and takes its card (a payment
        whose card the ledger does not name keeps the request's card as given)."""
        transfer = await self._ledger.find_transfer(org, draft.transfer_id)
        if transfer is None or not transfer.touches(draft.customer_id):
            raise TransferNotFound("transfer not found")
        if draft.category is ComplaintCategory.CARD_PAYMENT:
            if not transfer.is_card_payment:
                raise invalid([FieldViolation("transfer_id", "is not a card payment")])
            if not transfer.card_id:
                return draft
            if draft.card_id and draft.card_id != transfer.card_id:
                raise invalid([FieldViolation("card_id", "is not the card of this card payment")])
            return replace(draft, card_id=transfer.card_id)
        return draft

    # --- reads ---

    async def get_complaint(self, principal: Principal, complaint_id: str) -> ShownComplaint:
        violations: list[FieldViolation] = []
        parse_uuid(complaint_id, "complaint_id", violations)
        if violations:
            raise invalid(violations)
        return self._shown(principal, await self._owned(principal, complaint_id))

    async def list_complaints(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        status: ComplaintStatus | None,
        category: ComplaintCategory | None,
        customer_id: str,
        breached_only: bool,
    ) -> Page:
        violations: list[FieldViolation] = []
        parse_uuid(customer_id, "customer_id", violations, required=False)
        if violations:
            raise invalid(violations)
        size = page_size(page_size_requested)
        if _is_customer(principal):
            if customer_id and customer_id != principal.subject:
                raise PermissionDenied("customers list their own complaints only")
            customer_id = principal.subject
        filters = {
            "status": status and status.value,
            "category": category and category.value,
            "customer_id": customer_id,
            "breached_only": breached_only,
        }
        after = cursor_after(decode_page_token(page_token, filters))
        complaints = await self._complaints.page(
            principal.organization_id,
            status=status,
            category=category,
            customer_id=customer_id,
            breached_only=breached_only,
            now_s=self._clock(),
            after=after,
            limit=size + 1,
        )
        page, token = next_page(
            complaints, size, lambda last: page_cursor(last.opened_at_s, last.complaint_id), filters
        )
        return Page([self._shown(principal, complaint, with_notes=False) for complaint in page], token)

    # --- notes and staff steps ---

    async def add_note(
        self,
        principal: Principal,
        *,
        complaint_note_id: str,
        complaint_id: str,
        text: str,
        visibility: NoteVisibility | None,
    ) -> ShownComplaint:
        validate_note(complaint_id, complaint_note_id, text)
        customer = _is_customer(principal)
        await self._owned(principal, complaint_id)
        audit = self._audit(principal)
        note = ComplaintNote(
            complaint_note_id=complaint_note_id,
            author_principal_id=principal.subject,
            from_customer=customer,
            visibility=NoteVisibility.CUSTOMER if customer else (visibility or NoteVisibility.INTERNAL),
            text=text,
            created_at_s=audit.now_s,
        )

        def change(complaint: Complaint) -> Step | None:
            if _replayed_note(complaint, note, "complaint_note_id"):
                return None
            changed = add_note(complaint, note, audit.now_s)
            replied = complaint.status is ComplaintStatus.AWAITING_CUSTOMER and changed.status is not complaint.status
            action = "customer_replied" if replied else f"note_added_{note.visibility.name.lower()}"
            return Step(changed, action, note=note)

        complaint, _ = await self._complaints.apply(principal.organization_id, complaint_id, change, audit)
        return self._shown(principal, complaint)

    async def acknowledge_complaint(self, principal: Principal, complaint_id: str, request_id: str) -> ShownComplaint:
        validate_step(complaint_id, request_id)
        audit = self._audit(principal)

        def change(complaint: Complaint) -> Step | None:
            changed = acknowledge(complaint, request_id, audit.now_s)
            return None if changed is None else Step(changed, "acknowledged")

        complaint, _ = await self._complaints.apply(principal.organization_id, complaint_id, change, audit)
        return self._shown(principal, complaint)

    async def request_information(
        self, principal: Principal, complaint_id: str, message: str, request_id: str
    ) -> ShownComplaint:
        """Asks the customer (a CUSTOMER-visible note and a notification); the resolve clock pauses."""
        validate_step(complaint_id, request_id, "message", message)
        audit = self._audit(principal)
        note = self._step_note(principal, "information", request_id, message, NoteVisibility.CUSTOMER, audit.now_s)

        def change(complaint: Complaint) -> Step | None:
            if _replayed_note(complaint, note, "request_id"):
                return None
            waiting = request_information(complaint, audit.now_s)
            return Step(
                replace(waiting, notes=(*waiting.notes, note)),
                "information_requested",
                note=note,
                note_id_field="request_id",
                notice=Notice(derived_id(NOTIFICATION_NAMESPACE, f"information:{request_id}"), message),
            )

        complaint, step = await self._complaints.apply(principal.organization_id, complaint_id, change, audit)
        await self._hand_over(principal.organization_id, step)
        return self._shown(principal, complaint)

    async def escalate_complaint(
        self, principal: Principal, complaint_id: str, reason: str, request_id: str
    ) -> ShownComplaint:
        validate_step(complaint_id, request_id, "reason", reason)
        audit = self._audit(principal)
        note = self._step_note(principal, "escalation", request_id, reason, NoteVisibility.INTERNAL, audit.now_s)

        def change(complaint: Complaint) -> Step | None:
            if _replayed_note(complaint, note, "request_id"):
                return None
            raised = escalate(complaint, audit.now_s)
            return Step(
                replace(raised, notes=(*raised.notes, note)), "escalated", note=note, note_id_field="request_id"
            )

        complaint, _ = await self._complaints.apply(principal.organization_id, complaint_id, change, audit)
        return self._shown(principal, complaint)

    @staticmethod
    def _step_note(
        principal: Principal, kind: str, request_id: str, text: str, visibility: NoteVisibility, now_s: float
    ) -> ComplaintNote:
        return ComplaintNote(
            complaint_note_id=derived_id(STEP_NOTE_NAMESPACE, f"{kind}:{request_id}"),
            author_principal_id=principal.subject,
            from_customer=False,
            visibility=visibility,
            text=text,
            created_at_s=now_s,
        )

    # --- ResolveComplaint ---

    async def resolve_complaint(self, principal: Principal, request: ResolutionRequest) -> ShownComplaint:
        """Claims the complaint for this request, refunds through the ledger (reversal id derived from the request
        id, so a retry never refunds twice), then records the outcome and notifies the customer. A retry with the
        same request id after a ledger failure repeats only what is left."""
        validate_resolution(request)
        org = principal.organization_id
        audit = self._audit(principal)
        outcome_action = {ComplaintOutcome.UPHELD: "upheld", ComplaintOutcome.REJECTED: "rejected"}

        def finished(complaint: Complaint, refund_transfer_id: str) -> Step | None:
            done = finish_resolution(complaint, refund_transfer_id, audit.now_s)
            if done is None:
                return None
            assert done.outcome is not None
            return Step(
                done,
                outcome_action[done.outcome],
                notice=Notice(
                    derived_id(NOTIFICATION_NAMESPACE, f"resolution:{done.resolve_request_id}"),
                    done.resolution_reason,
                ),
            )

        def claim(complaint: Complaint) -> Step | None:
            claimed = begin_resolution(complaint, request, principal.subject)
            if claimed is None:
                return None
            if claimed.refund is None:
                return finished(claimed, "")
            return Step(claimed, "refund_requested")

        def released(complaint: Complaint) -> Step | None:
            if complaint.resolve_request_id != request.request_id or complaint.resolved_at_s is not None:
                return None
            return Step(release_resolution(complaint), "refund_refused")

        complaint, step = await self._complaints.apply(org, request.complaint_id, claim, audit)
        if complaint.resolved_at_s is None:
            refund = complaint.refund
            assert refund is not None
            assert complaint.resolve_request_id == request.request_id
            try:
                refund_transfer_id = await self._ledger.refund(
                    organization_id=org,
                    reversal_id=derived_id(REFUND_NAMESPACE, request.request_id),
                    original_transfer_id=complaint.transfer_id,
                    amount_minor=refund.amount_minor,
                    currency=refund.currency,
                    complaint_id=complaint.complaint_id,
                )
            except RefundRefused:
                await self._complaints.apply(org, request.complaint_id, released, audit)
                raise
            except Unavailable as err:
                await self._complaints.record_event(org, request.complaint_id, "ledger_call_failed", audit)
                raise Unavailable(
                    "the ledger did not confirm the refund; retry with the same request_id", retry_after_s=1.0
                ) from err
            complaint, step = await self._complaints.apply(
                org, request.complaint_id, lambda current: finished(current, refund_transfer_id), audit
            )
        await self._hand_over(org, step)
        return self._shown(principal, complaint)

    # --- GetComplaintReport ---

    async def report(self, principal: Principal, start_s: float | None, end_s: float | None) -> ComplaintReport:
        start, end = validate_period(start_s, end_s)
        return await self._complaints.report(principal.organization_id, start, end, self._clock())

    # --- notifications ---

    async def _hand_over(self, organization_id: str, step: Step | None) -> None:
        """Best effort right after the commit; ``ComplaintJobs`` retries what this could not send."""
        if step is None or step.notice is None:
            return
        pending = await self._complaints.notification(organization_id, step.notice.notification_id)
        if pending is not None:
            await deliver(self._complaints, self._notifier, pending, self._clock)


def _replayed_note(complaint: Complaint, note: ComplaintNote, id_field: str) -> bool:
    stored = next((kept for kept in complaint.notes if kept.complaint_note_id == note.complaint_note_id), None)
    if stored is None:
        return False
    check_note_replay(note, stored, id_field)
    return True


async def deliver(
    complaints: ComplaintStore, notifier: ComplaintNotifier, pending: PendingNotification, clock: Clock
) -> bool:
    """Hands one notification to the vault and records the attempt; True when it was taken."""
    try:
        await notifier.notify(pending)
    except NotificationNotSent as err:
        log.warning("complaint notification not sent yet", extra={"reason": str(err)})
        await complaints.mark_notification(
            pending, sent=False, audit=Audit(SYSTEM_ACTOR, current_trace_id(), whole_microseconds(clock()))
        )
        return False
    await complaints.mark_notification(
        pending, sent=True, audit=Audit(SYSTEM_ACTOR, current_trace_id(), whole_microseconds(clock()))
    )
    return True


class ComplaintJobs:
    """The background round: hands over notifications still pending and refreshes the open/breached gauges."""

    def __init__(self, complaints: ComplaintStore, notifier: ComplaintNotifier, clock: Clock = time.time) -> None:
        self._complaints = complaints
        self._notifier = notifier
        self._clock = clock

    async def run_once(self) -> int:
        """One round; returns how many notifications were taken by the vault."""
        sent = 0
        for pending in await self._complaints.pending_notifications(limits.COMPLAINT_NOTIFICATIONS_BATCH):
            sent += await deliver(self._complaints, self._notifier, pending, self._clock)
        await self.refresh_gauges()
        return sent

    async def refresh_gauges(self) -> None:
        counts = await self._complaints.open_and_breached_by_category(self._clock())
        for category, (open_count, breached_count) in counts.items():
            label = category.name.lower()
            OPEN_COMPLAINTS.labels(label).set(open_count)
            BREACHED_COMPLAINTS.labels(label).set(breached_count)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the next round tries again; one bad round must not stop the job
                log.exception("complaint job round failed")
            await asyncio.sleep(limits.COMPLAINT_JOB_INTERVAL_S)
