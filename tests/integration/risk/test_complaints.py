"""Complaints and disputes over gRPC against a real risk server and database, with a fake ledger (GetTransfer,
GetAccount, ReverseTransfer) and a fake contacts vault (SendNotification) at the edge, and risk's clock moved by the
tests: every RPC, ownership, bad input with nothing half-written, idempotent replays, refunds, notifications,
reporting, gauges and the audit trail."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from services.kit.status import ErrorDetails
from services.risk.domain_complaints import DAY_S, REFUND_NAMESPACE, derived_id
from tests.integration.risk.conftest import RiskStack
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_transfers_pb2
from wallet.risk.v1 import risk_complaints_pb2 as pb

pytestmark = pytest.mark.integration

TRANSFER = pb.COMPLAINT_CATEGORY_TRANSFER
CARD_PAYMENT = pb.COMPLAINT_CATEGORY_CARD_PAYMENT
SERVICE = pb.COMPLAINT_CATEGORY_SERVICE
RECEIVED = pb.COMPLAINT_STATUS_RECEIVED
IN_PROGRESS = pb.COMPLAINT_STATUS_IN_PROGRESS
AWAITING = pb.COMPLAINT_STATUS_AWAITING_CUSTOMER
UPHELD = pb.COMPLAINT_STATUS_UPHELD
REJECTED = pb.COMPLAINT_STATUS_REJECTED


def _id() -> str:
    return str(uuid.uuid4())


def same(first: pb.Complaint, second: pb.Complaint) -> bool:
    """Equal but for the time left, which is worked out at each read."""
    first, second = (
        pb.Complaint.FromString(first.SerializeToString()),
        pb.Complaint.FromString(second.SerializeToString()),
    )
    first.sla.ClearField("resolve_time_left")
    second.sla.ClearField("resolve_time_left")
    return first == second


async def refused(call: Awaitable[Any]) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return ErrorDetails.from_rpc_error(raised.value)


@pytest.fixture
def clock(risk_stack: RiskStack) -> Iterator[Any]:
    """Risk's clock, put back after the test."""
    yield risk_stack.clock
    risk_stack.clock.offset_s = 0.0


class Tenant:
    """One fresh tenant with a customer, a support member and an approver (with step-up)."""

    def __init__(self, stack: RiskStack) -> None:
        self.stack = stack
        self.org = _id()
        self.customer_id = _id()
        self.customer = stack.auth(stack.tokens.customer(self.org, self.customer_id))
        self.support = stack.auth(stack.tokens.member(self.org, "support"))
        self.approver = stack.auth(stack.tokens.member(self.org, "approver", step_up=True))
        self.stub = stack.stub

    def transfer(
        self, *, amount_minor: int = 10_000, card_id: str = "", customer_id: str = "", card_named: bool = True
    ) -> str:
        return self.stack.ledger.add_transfer(
            self.org,
            debit_customer=customer_id or self.customer_id,
            amount_minor=amount_minor,
            card_id=card_id,
            card_named=card_named,
        )

    async def open(self, **fields: Any) -> pb.Complaint:
        request = pb.OpenComplaintRequest(
            complaint_id=fields.pop("complaint_id", _id()),
            category=fields.pop("category", TRANSFER),
            description=fields.pop("description", "I was charged twice for one purchase."),
            **fields,
        )
        if request.category in (TRANSFER, CARD_PAYMENT) and not request.transfer_id:
            request.transfer_id = self.transfer()
        response = await self.stub.OpenComplaint(request, metadata=self.customer)
        return response.complaint

    async def acknowledge(self, complaint_id: str, request_id: str = "") -> pb.Complaint:
        response = await self.stub.AcknowledgeComplaint(
            pb.AcknowledgeComplaintRequest(complaint_id=complaint_id, request_id=request_id or _id()),
            metadata=self.support,
        )
        return response.complaint

    async def get(self, complaint_id: str, metadata: Any = None) -> pb.Complaint:
        response = await self.stub.GetComplaint(
            pb.GetComplaintRequest(complaint_id=complaint_id), metadata=metadata or self.support
        )
        return response.complaint

    def resolve(self, complaint_id: str, request_id: str, **fields: Any) -> Awaitable[pb.ResolveComplaintResponse]:
        metadata = fields.pop("metadata", None) or self.approver
        return self.stub.ResolveComplaint(  # type: ignore[no-any-return]
            pb.ResolveComplaintRequest(
                complaint_id=complaint_id,
                outcome=fields.pop("outcome", pb.COMPLAINT_OUTCOME_UPHELD),
                reason=fields.pop("reason", "You were charged twice; we refund the second charge."),
                request_id=request_id,
                **fields,
            ),
            metadata=metadata,
        )


# --- OpenComplaint ---


async def test_a_customer_opens_a_complaint_with_a_reference_number_and_sla_clocks(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    before = time.time()
    first = await tenant.open()
    second = await tenant.open(category=SERVICE, description="The app logs me out every few minutes.")
    year = time.gmtime(before).tm_year
    assert first.reference_number == f"CMP-{year}-000001"
    assert second.reference_number == f"CMP-{year}-000002"  # the tenant's own sequence
    assert Tenant(risk_stack).org != tenant.org
    assert first.status == RECEIVED
    assert first.customer_id == tenant.customer_id
    assert first.opened_by_principal_id == tenant.customer_id
    assert first.sla.acknowledge_due_at.seconds > before
    assert first.sla.resolve_due_at.seconds >= first.sla.acknowledge_due_at.seconds + 13 * DAY_S
    assert first.sla.resolve_time_left.seconds > 0
    assert not first.sla.acknowledge_breached
    assert not first.sla.resolve_breached
    other_tenant = await Tenant(risk_stack).open()
    assert other_tenant.reference_number == f"CMP-{year}-000001"


async def test_open_is_idempotent_by_complaint_id(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    transfer_id = tenant.transfer()
    request = pb.OpenComplaintRequest(
        complaint_id=_id(),
        category=TRANSFER,
        transfer_id=transfer_id,
        description="The money never arrived at the payee.",
        attachment_references=["doc-store://receipts/42"],
    )
    first = (await tenant.stub.OpenComplaint(request, metadata=tenant.customer)).complaint
    replay = (await tenant.stub.OpenComplaint(request, metadata=tenant.customer)).complaint
    assert same(replay, first)
    request.description = "Something else entirely, same id."
    details = await refused(tenant.stub.OpenComplaint(request, metadata=tenant.customer))
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert details.metadata["field"] == "description"


async def test_complaints_about_transfers_that_are_not_the_customers_are_not_found(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    other_tenant = Tenant(risk_stack)
    foreign = other_tenant.transfer(customer_id=tenant.customer_id)  # same customer id, another tenant
    someone_elses = tenant.transfer(customer_id=_id())
    for transfer_id in (foreign, someone_elses, _id()):
        complaint_id = _id()
        details = await refused(
            tenant.stub.OpenComplaint(
                pb.OpenComplaintRequest(
                    complaint_id=complaint_id,
                    category=TRANSFER,
                    transfer_id=transfer_id,
                    description="This transfer is wrong, please check.",
                ),
                metadata=tenant.customer,
            )
        )
        assert details.code == grpc.StatusCode.NOT_FOUND
        assert (
            await refused(
                tenant.stub.GetComplaint(pb.GetComplaintRequest(complaint_id=complaint_id), metadata=tenant.support)
            )
        ).code == grpc.StatusCode.NOT_FOUND


async def test_support_opens_for_a_customer_whose_transfer_it_is(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    transfer_id = tenant.transfer()
    request = pb.OpenComplaintRequest(
        complaint_id=_id(), category=TRANSFER, transfer_id=transfer_id, description="Customer called: duplicate."
    )
    missing = await refused(tenant.stub.OpenComplaint(request, metadata=tenant.support))
    assert missing.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in missing.field_violations} == {"customer_id"}
    request.customer_id = _id()
    assert (
        await refused(tenant.stub.OpenComplaint(request, metadata=tenant.support))
    ).code == grpc.StatusCode.NOT_FOUND
    request.customer_id = tenant.customer_id
    complaint = (await tenant.stub.OpenComplaint(request, metadata=tenant.support)).complaint
    assert complaint.customer_id == tenant.customer_id
    assert complaint.opened_by_principal_id != tenant.customer_id


async def test_customers_complain_only_for_themselves(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    details = await refused(
        tenant.stub.OpenComplaint(
            pb.OpenComplaintRequest(
                complaint_id=_id(), customer_id=_id(), category=SERVICE, description="Someone else's complaint."
            ),
            metadata=tenant.customer,
        )
    )
    assert details.code == grpc.StatusCode.PERMISSION_DENIED


async def test_card_payment_complaints_need_a_card_payment_and_take_its_card(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    card_id = _id()
    complaint = await tenant.open(category=CARD_PAYMENT, transfer_id=tenant.transfer(card_id=card_id))
    assert complaint.card_id == card_id
    not_a_card = await refused(tenant.open(category=CARD_PAYMENT, transfer_id=tenant.transfer()))
    assert not_a_card.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in not_a_card.field_violations] == ["transfer_id"]
    wrong_card = await refused(
        tenant.open(category=CARD_PAYMENT, transfer_id=tenant.transfer(card_id=card_id), card_id=_id())
    )
    assert [v.field for v in wrong_card.field_violations] == ["card_id"]
    unnamed = await tenant.open(category=CARD_PAYMENT, transfer_id=tenant.transfer(card_id=card_id, card_named=False))
    assert unnamed.card_id == ""  # a payment whose card the ledger does not name: nothing is made up


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"description": "x" * 4001}, "description"),
        ({"description": "too short"}, "description"),
        ({"category": 0}, "category"),
        ({"category": 99}, "category"),
        ({"category": pb.COMPLAINT_CATEGORY_UNAUTHORIZED_TRANSACTION}, "transfer_id"),
        ({"category": SERVICE, "attachment_references": [f"doc-{n}" for n in range(11)]}, "attachment_references"),
        ({"category": SERVICE, "transfer_id": "not-a-uuid"}, "transfer_id"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    risk_stack: RiskStack, fields: dict[str, Any], bad: str
) -> None:
    tenant = Tenant(risk_stack)
    complaint_id = _id()
    request = pb.OpenComplaintRequest(complaint_id=complaint_id, description="A fine description here.")
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    details = await refused(tenant.stub.OpenComplaint(request, metadata=tenant.customer))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad in {v.field for v in details.field_violations}
    hidden = await refused(
        tenant.stub.GetComplaint(pb.GetComplaintRequest(complaint_id=complaint_id), metadata=tenant.support)
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


# --- GetComplaint / ListComplaints ---


async def test_customers_see_their_own_complaints_and_only_customer_visible_notes(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    for visibility, text in (
        (pb.NOTE_VISIBILITY_INTERNAL, "Looks like a duplicate."),
        (pb.NOTE_VISIBILITY_CUSTOMER, "We are looking into it."),
    ):
        await tenant.stub.AddComplaintNote(
            pb.AddComplaintNoteRequest(
                complaint_note_id=_id(), complaint_id=complaint.complaint_id, text=text, visibility=visibility
            ),
            metadata=tenant.support,
        )
    staff_view = await tenant.get(complaint.complaint_id)
    customer_view = await tenant.get(complaint.complaint_id, tenant.customer)
    assert [n.text for n in staff_view.notes] == ["Looks like a duplicate.", "We are looking into it."]
    assert [n.text for n in customer_view.notes] == ["We are looking into it."]
    stranger = risk_stack.auth(risk_stack.tokens.customer(tenant.org, _id()))
    assert (await refused(tenant.get(complaint.complaint_id, stranger))).code == grpc.StatusCode.NOT_FOUND
    other_tenant = Tenant(risk_stack)
    assert (await refused(tenant.get(complaint.complaint_id, other_tenant.support))).code == grpc.StatusCode.NOT_FOUND


async def test_list_filters_pages_and_keeps_customers_to_their_own(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    mine = [await tenant.open() for _ in range(3)]
    service = await tenant.open(category=SERVICE, description="The app keeps crashing on start.")
    other_customer = Tenant(risk_stack)
    other_customer.org = tenant.org
    other_customer.customer = risk_stack.auth(risk_stack.tokens.customer(tenant.org, other_customer.customer_id))
    theirs = await other_customer.open()

    own = await tenant.stub.ListComplaints(pb.ListComplaintsRequest(), metadata=tenant.customer)
    assert [c.complaint_id for c in own.complaints] == [c.complaint_id for c in (*mine, service)]
    assert all(not c.notes for c in own.complaints)
    denied = await refused(
        tenant.stub.ListComplaints(
            pb.ListComplaintsRequest(customer_id=other_customer.customer_id), metadata=tenant.customer
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED

    everyone = await tenant.stub.ListComplaints(pb.ListComplaintsRequest(), metadata=tenant.support)
    assert theirs.complaint_id in {c.complaint_id for c in everyone.complaints}
    services = await tenant.stub.ListComplaints(pb.ListComplaintsRequest(category=SERVICE), metadata=tenant.support)
    assert [c.complaint_id for c in services.complaints] == [service.complaint_id]

    seen: list[str] = []
    token = ""
    while True:
        page = await tenant.stub.ListComplaints(
            pb.ListComplaintsRequest(page_size=2, page_token=token, status=RECEIVED), metadata=tenant.support
        )
        seen += [c.complaint_id for c in page.complaints]
        token = page.next_page_token
        if not token:
            break
    assert seen == [c.complaint_id for c in (*mine, service, theirs)]
    switched = await refused(
        tenant.stub.ListComplaints(
            pb.ListComplaintsRequest(page_size=2, page_token=token or "x"), metadata=tenant.support
        )
    )
    assert switched.code == grpc.StatusCode.INVALID_ARGUMENT


# --- notes, acknowledge, request information, escalate ---


async def test_the_customers_answer_resumes_a_paused_complaint(risk_stack: RiskStack, clock: Any) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    await tenant.acknowledge(complaint.complaint_id)
    request_id = _id()
    ask = pb.RequestComplaintInformationRequest(
        complaint_id=complaint.complaint_id,
        message="Please send the receipt of the second charge.",
        request_id=request_id,
    )
    waiting = (await tenant.stub.RequestComplaintInformation(ask, metadata=tenant.support)).complaint
    assert waiting.status == AWAITING
    replay = (await tenant.stub.RequestComplaintInformation(ask, metadata=tenant.support)).complaint
    assert len(replay.notes) == len(waiting.notes) == 1
    assert waiting.notes[0].visibility == pb.NOTE_VISIBILITY_CUSTOMER
    # The customer was told through the vault, once, with the reference number and the request.
    sent = risk_stack.contacts.to_customer(tenant.customer_id)
    assert len(sent) == 1
    assert sent[0].params["reference_number"] == complaint.reference_number
    assert sent[0].params["message"] == "Please send the receipt of the second charge."
    assert sent[0].notification_template == 7  # NOTIFICATION_TEMPLATE_COMPLAINT_UPDATE

    clock.offset_s = 3 * DAY_S  # three days pass while the customer looks for the receipt
    note_id = _id()
    answer = pb.AddComplaintNoteRequest(
        complaint_note_id=note_id,
        complaint_id=complaint.complaint_id,
        text="Attached, see doc-7.",
        visibility=pb.NOTE_VISIBILITY_INTERNAL,  # ignored for customers
    )
    answered = (await tenant.stub.AddComplaintNote(answer, metadata=tenant.customer)).complaint
    assert answered.status == IN_PROGRESS
    assert answered.notes[-1].from_customer
    assert answered.notes[-1].visibility == pb.NOTE_VISIBILITY_CUSTOMER
    assert answered.sla.resolve_due_at.seconds - waiting.sla.resolve_due_at.seconds >= 3 * DAY_S - 60
    again = (await tenant.stub.AddComplaintNote(answer, metadata=tenant.customer)).complaint
    assert len(again.notes) == len(answered.notes)
    answer.text = "A different text under the same note id."
    reused = await refused(tenant.stub.AddComplaintNote(answer, metadata=tenant.customer))
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    assert reused.metadata["field"] == "text"


async def test_invalid_state_transitions_are_refused(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    early = await refused(
        tenant.stub.RequestComplaintInformation(
            pb.RequestComplaintInformationRequest(
                complaint_id=complaint.complaint_id, message="Receipt?", request_id=_id()
            ),
            metadata=tenant.support,
        )
    )
    assert early.code == grpc.StatusCode.FAILED_PRECONDITION
    assert early.reason == "COMPLAINT_STATE_INVALID"
    assert early.metadata["status"] == "RECEIVED"
    unacknowledged = await refused(
        tenant.resolve(complaint.complaint_id, _id(), outcome=pb.COMPLAINT_OUTCOME_REJECTED)
    )
    assert unacknowledged.reason == "COMPLAINT_STATE_INVALID"
    request_id = _id()
    acknowledged = await tenant.acknowledge(complaint.complaint_id, request_id)
    assert acknowledged.status == IN_PROGRESS
    assert acknowledged.sla.HasField("acknowledged_at")
    assert same(await tenant.acknowledge(complaint.complaint_id, request_id), acknowledged)  # a replay
    twice = await refused(tenant.acknowledge(complaint.complaint_id))
    assert twice.reason == "COMPLAINT_STATE_INVALID"
    assert same(await tenant.get(complaint.complaint_id), acknowledged)  # nothing changed by the refusals


async def test_escalation_is_an_internal_note_and_replays(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    request = pb.EscalateComplaintRequest(
        complaint_id=complaint.complaint_id, reason="Third complaint this month.", request_id=_id()
    )
    escalated = (await tenant.stub.EscalateComplaint(request, metadata=tenant.support)).complaint
    assert escalated.escalation_level == 1
    assert (await tenant.stub.EscalateComplaint(request, metadata=tenant.support)).complaint.escalation_level == 1
    request.request_id = _id()
    assert (await tenant.stub.EscalateComplaint(request, metadata=tenant.support)).complaint.escalation_level == 2
    customer_view = await tenant.get(complaint.complaint_id, tenant.customer)
    assert not customer_view.notes
    too_long = await refused(
        tenant.stub.EscalateComplaint(
            pb.EscalateComplaintRequest(complaint_id=complaint.complaint_id, reason="x" * 4001, request_id=_id()),
            metadata=tenant.support,
        )
    )
    assert [v.field for v in too_long.field_violations] == ["reason"]


async def test_customers_cannot_administer_complaints(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    denied = await refused(
        tenant.stub.AcknowledgeComplaint(
            pb.AcknowledgeComplaintRequest(complaint_id=complaint.complaint_id, request_id=_id()),
            metadata=tenant.customer,
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


# --- ResolveComplaint ---


async def test_an_approver_upholds_with_a_partial_refund_exactly_once(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    transfer_id = tenant.transfer(amount_minor=10_000)
    complaint = await tenant.open(transfer_id=transfer_id)
    await tenant.acknowledge(complaint.complaint_id)
    support_try = await refused(tenant.resolve(complaint.complaint_id, _id(), metadata=tenant.support))
    assert support_try.code == grpc.StatusCode.PERMISSION_DENIED
    no_step_up = risk_stack.auth(risk_stack.tokens.member(tenant.org, "approver"))
    assert (
        await refused(tenant.resolve(complaint.complaint_id, _id(), metadata=no_step_up))
    ).reason == "STEP_UP_REQUIRED"

    request_id = _id()
    refund = money_pb2.Money(currency="EUR", amount_minor=2_500)
    upheld = (await tenant.resolve(complaint.complaint_id, request_id, refund_amount=refund)).complaint
    assert upheld.status == UPHELD
    reversal_id = derived_id(REFUND_NAMESPACE, request_id)
    assert upheld.resolution.refund_transfer_id == reversal_id
    assert upheld.resolution.refund_amount == refund
    assert upheld.resolution.outcome == pb.COMPLAINT_OUTCOME_UPHELD
    assert upheld.sla.resolve_time_left.seconds == 0
    reversal = risk_stack.ledger.reversals[(tenant.org, reversal_id)]
    assert reversal.original_transfer_id == transfer_id
    assert reversal.amount == refund
    assert reversal.reason == ledger_transfers_pb2.REVERSAL_REASON_DISPUTE_UPHELD
    assert reversal.complaint_id == complaint.complaint_id

    replay = (await tenant.resolve(complaint.complaint_id, request_id, refund_amount=refund)).complaint
    assert same(replay, upheld)
    again = await refused(tenant.resolve(complaint.complaint_id, _id(), refund_amount=refund))
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION
    assert again.reason == "COMPLAINT_ALREADY_RESOLVED"
    assert risk_stack.ledger.reversed_minor(tenant.org, transfer_id) == 2_500
    told = [r for r in risk_stack.contacts.to_customer(tenant.customer_id) if r.params["status"] == "upheld"]
    assert len(told) == 1
    assert told[0].params["message"] == "You were charged twice; we refund the second charge."
    note = await refused(
        tenant.stub.AddComplaintNote(
            pb.AddComplaintNoteRequest(complaint_note_id=_id(), complaint_id=complaint.complaint_id, text="Thanks!"),
            metadata=tenant.customer,
        )
    )
    assert note.reason == "COMPLAINT_ALREADY_RESOLVED"


async def test_a_ledger_outage_is_retried_with_the_same_request_and_refunds_once(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    transfer_id = tenant.transfer(amount_minor=10_000)
    complaint = await tenant.open(transfer_id=transfer_id)
    await tenant.acknowledge(complaint.complaint_id)
    refund = money_pb2.Money(currency="EUR", amount_minor=10_000)
    request_id = _id()
    risk_stack.ledger.fail_reversals = 1
    outage = await refused(tenant.resolve(complaint.complaint_id, request_id, refund_amount=refund))
    assert outage.code == grpc.StatusCode.UNAVAILABLE
    pending = await tenant.get(complaint.complaint_id)
    assert pending.status == IN_PROGRESS
    assert not pending.HasField("resolution")
    other = await refused(tenant.resolve(complaint.complaint_id, _id(), outcome=pb.COMPLAINT_OUTCOME_REJECTED))
    assert other.reason == "COMPLAINT_ALREADY_RESOLVED"  # the first decision is under way
    upheld = (await tenant.resolve(complaint.complaint_id, request_id, refund_amount=refund)).complaint
    assert upheld.status == UPHELD
    assert risk_stack.ledger.reversed_minor(tenant.org, transfer_id) == 10_000
    actions = [
        action
        for action, *_ in await risk_stack.app.complaints._complaints.history(tenant.org, complaint.complaint_id)
    ]
    assert actions[:5] == ["opened", "acknowledged", "refund_requested", "ledger_call_failed", "upheld"]


async def test_a_refund_beyond_the_transfer_is_refused_and_released(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open(transfer_id=tenant.transfer(amount_minor=1_000))
    await tenant.acknowledge(complaint.complaint_id)
    too_much = money_pb2.Money(currency="EUR", amount_minor=1_001)
    details = await refused(tenant.resolve(complaint.complaint_id, _id(), refund_amount=too_much))
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "REVERSAL_EXCEEDS_ORIGINAL"
    still_open = await tenant.get(complaint.complaint_id)
    assert still_open.status == IN_PROGRESS
    rejected = (
        await tenant.resolve(
            complaint.complaint_id, _id(), outcome=pb.COMPLAINT_OUTCOME_REJECTED, reason="No error found."
        )
    ).complaint
    assert rejected.status == REJECTED
    assert rejected.resolution.reason == "No error found."
    assert not rejected.resolution.refund_transfer_id
    told = [r for r in risk_stack.contacts.to_customer(tenant.customer_id) if r.params["status"] == "rejected"]
    assert [r.params["message"] for r in told] == ["No error found."]


async def test_resolution_input_is_validated(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open(category=SERVICE, description="The support line never answers.")
    await tenant.acknowledge(complaint.complaint_id)
    refund = money_pb2.Money(currency="EUR", amount_minor=100)
    no_transfer = await refused(tenant.resolve(complaint.complaint_id, _id(), refund_amount=refund))
    assert no_transfer.reason == "COMPLAINT_STATE_INVALID"
    bad = await refused(
        tenant.resolve(complaint.complaint_id, "not-a-uuid", outcome=0, reason="x" * 4001, refund_amount=refund)
    )
    assert {v.field for v in bad.field_violations} == {"request_id", "outcome", "reason"}
    assert (await tenant.get(complaint.complaint_id)).status == IN_PROGRESS


# --- notifications that could not be handed over ---


async def test_a_notification_the_vault_missed_is_sent_by_the_job(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    await tenant.acknowledge(complaint.complaint_id)
    risk_stack.contacts.fail_next = 1
    await tenant.stub.RequestComplaintInformation(
        pb.RequestComplaintInformationRequest(
            complaint_id=complaint.complaint_id, message="Which card?", request_id=_id()
        ),
        metadata=tenant.support,
    )
    assert risk_stack.contacts.to_customer(tenant.customer_id) == []
    await risk_stack.app.complaint_jobs.run_once()
    assert [r.params["message"] for r in risk_stack.contacts.to_customer(tenant.customer_id)] == ["Which card?"]
    await risk_stack.app.complaint_jobs.run_once()
    assert len(risk_stack.contacts.to_customer(tenant.customer_id)) == 1
    actions = [a for a, *_ in await risk_stack.app.complaints._complaints.history(tenant.org, complaint.complaint_id)]
    assert actions == ["opened", "acknowledged", "information_requested", "customer_notified"]


# --- breach flags with a moved clock, reporting and gauges ---


def gauge(name: str, category: str) -> float:
    value = REGISTRY.get_sample_value(name, {"category": category})
    return 0.0 if value is None else value


async def test_breach_flags_reports_and_gauges_follow_the_clock(risk_stack: RiskStack, clock: Any) -> None:
    tenant = Tenant(risk_stack)
    auditor = risk_stack.auth(risk_stack.tokens.member(tenant.org, "auditor"))
    start = time.time()
    late = await tenant.open()
    on_time = await tenant.open()
    await tenant.acknowledge(on_time.complaint_id)
    service = await tenant.open(category=SERVICE, description="Fees were not explained to me.")
    await tenant.acknowledge(service.complaint_id)
    await tenant.resolve(
        service.complaint_id, _id(), outcome=pb.COMPLAINT_OUTCOME_REJECTED, reason="Fees are listed."
    )

    clock.offset_s = 4 * DAY_S  # past any 1-business-day acknowledge clock, before any 15-day resolve clock
    seen = await tenant.get(late.complaint_id)
    assert seen.sla.acknowledge_breached
    assert not seen.sla.resolve_breached
    assert not (await tenant.get(on_time.complaint_id)).sla.acknowledge_breached
    breached = await tenant.stub.ListComplaints(pb.ListComplaintsRequest(breached_only=True), metadata=tenant.support)
    assert [c.complaint_id for c in breached.complaints] == [late.complaint_id]

    period = pb.GetComplaintReportRequest()
    period.start_time.FromSeconds(int(start) - 60)
    period.end_time.FromSeconds(int(start) + 3600)
    report = await tenant.stub.GetComplaintReport(period, metadata=auditor)
    rows = {(r.category, r.status): r for r in report.rows}
    assert set(rows) == {(TRANSFER, RECEIVED), (TRANSFER, IN_PROGRESS), (SERVICE, REJECTED)}
    assert rows[(TRANSFER, RECEIVED)].count == 1
    assert rows[(TRANSFER, RECEIVED)].acknowledge_breached_count == 1
    assert rows[(TRANSFER, RECEIVED)].open_age_1d_to_7d_count == 1
    assert rows[(TRANSFER, IN_PROGRESS)].acknowledge_breached_count == 0
    assert rows[(SERVICE, REJECTED)].open_age_1d_to_7d_count == 0  # resolved: no age bucket
    assert (report.open_total, report.breached_total) == (2, 1)

    clock.offset_s = 30 * DAY_S  # past every resolve clock
    report = await tenant.stub.GetComplaintReport(period, metadata=auditor)
    rows = {(r.category, r.status): r for r in report.rows}
    assert rows[(TRANSFER, IN_PROGRESS)].resolve_breached_count == 1
    assert rows[(TRANSFER, IN_PROGRESS)].open_age_over_15d_count == 1
    assert rows[(SERVICE, REJECTED)].resolve_breached_count == 0
    assert (report.open_total, report.breached_total) == (2, 2)
    assert (await tenant.get(on_time.complaint_id)).sla.resolve_breached

    await risk_stack.app.complaint_jobs.refresh_gauges()
    assert gauge("wallet_risk_complaints_open", "transfer") >= 2
    assert gauge("wallet_risk_complaints_breached", "transfer") >= 2
    assert gauge("wallet_risk_complaints_open", "privacy") == 0

    support_report = await refused(tenant.stub.GetComplaintReport(period, metadata=tenant.support))
    assert support_report.code == grpc.StatusCode.PERMISSION_DENIED
    backwards = pb.GetComplaintReportRequest(start_time=period.end_time, end_time=period.start_time)
    assert (
        await refused(tenant.stub.GetComplaintReport(backwards, metadata=auditor))
    ).code == grpc.StatusCode.INVALID_ARGUMENT


# --- the audit trail ---


async def test_every_step_is_audited_with_actor_and_trace_but_no_text(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    complaint = await tenant.open()
    await tenant.acknowledge(complaint.complaint_id)
    await tenant.stub.EscalateComplaint(
        pb.EscalateComplaintRequest(
            complaint_id=complaint.complaint_id, reason="Customer is upset.", request_id=_id()
        ),
        metadata=tenant.support,
    )
    await tenant.stub.AddComplaintNote(
        pb.AddComplaintNoteRequest(complaint_note_id=_id(), complaint_id=complaint.complaint_id, text="Checked."),
        metadata=tenant.support,
    )
    await tenant.resolve(complaint.complaint_id, _id(), outcome=pb.COMPLAINT_OUTCOME_REJECTED, reason="No error.")
    history = await risk_stack.app.complaints._complaints.history(tenant.org, complaint.complaint_id)
    assert [action for action, *_ in history] == [
        "opened",
        "acknowledged",
        "escalated",
        "note_added_internal",
        "rejected",
        "customer_notified",
    ]
    assert history[0][1] == tenant.customer_id
    assert all(len(trace_id) in (0, 32) for _, _, trace_id, _ in history)
    pool = risk_stack.app.runtime.pool
    columns = {
        row["column_name"]
        for row in await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'complaint_events'"
        )
    }
    assert columns == {
        "organization_id",
        "complaint_id",
        "event_number",
        "action",
        "actor_principal_id",
        "trace_id",
        "occurred_at",
    }


async def test_concurrent_decisions_refund_at_most_once(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    transfer_id = tenant.transfer(amount_minor=10_000)
    complaint = await tenant.open(transfer_id=transfer_id)
    await tenant.acknowledge(complaint.complaint_id)
    refund = money_pb2.Money(currency="EUR", amount_minor=3_000)
    results = await asyncio.gather(
        *(tenant.resolve(complaint.complaint_id, _id(), refund_amount=refund) for _ in range(4)),
        return_exceptions=True,
    )
    won = [result for result in results if isinstance(result, pb.ResolveComplaintResponse)]
    lost = [ErrorDetails.from_rpc_error(result) for result in results if isinstance(result, grpc.aio.AioRpcError)]
    assert len(won) == 1
    assert [details.reason for details in lost] == ["COMPLAINT_ALREADY_RESOLVED"] * 3
    assert risk_stack.ledger.reversed_minor(tenant.org, transfer_id) == 3_000
