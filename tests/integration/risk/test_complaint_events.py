"""ListComplaintEvents against a real risk server and database: the tenant's complaint steps for auditors, newest
first, filtered by period and complaint, paged without a step skipped or repeated, other tenants' steps never
listed, support refused, and a read marked with an export id audited once (the same id with other filters refused)."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2

from tests.integration.risk.conftest import RiskStack
from tests.integration.risk.test_complaints import Tenant, refused
from wallet.risk.v1 import risk_complaints_pb2 as pb

pytestmark = pytest.mark.integration


def stamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment)
    return value


def around_now() -> tuple[timestamp_pb2.Timestamp, timestamp_pb2.Timestamp]:
    now = dt.datetime.now(dt.UTC)
    return stamp(now - dt.timedelta(hours=1)), stamp(now + dt.timedelta(hours=1))


async def worked_complaint(tenant: Tenant) -> str:
    """A complaint opened by the customer, acknowledged and escalated by support: three steps."""
    complaint = await tenant.open()
    await tenant.acknowledge(complaint.complaint_id)
    await tenant.stub.EscalateComplaint(
        pb.EscalateComplaintRequest(
            complaint_id=complaint.complaint_id, reason="Customer is upset.", request_id=str(uuid.uuid4())
        ),
        metadata=tenant.support,
    )
    return complaint.complaint_id


async def every_page(
    tenant: Tenant, auditor: object, request: pb.ListComplaintEventsRequest
) -> list[pb.ComplaintEvent]:
    events: list[pb.ComplaintEvent] = []
    while True:
        reply = await tenant.stub.ListComplaintEvents(request, metadata=auditor)
        events.extend(reply.complaint_events)
        if not reply.next_page_token:
            return events
        request.page_token = reply.next_page_token


async def test_auditors_list_the_tenants_steps_newest_first_in_pages(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    auditor = risk_stack.auth(risk_stack.tokens.member(tenant.org, "auditor"))
    first = await worked_complaint(tenant)
    second = await worked_complaint(tenant)
    await worked_complaint(Tenant(risk_stack))  # another tenant's steps
    start, end = around_now()

    events = await every_page(
        tenant, auditor, pb.ListComplaintEventsRequest(page_size=2, start_time=start, end_time=end)
    )
    assert [(e.complaint_id, e.action) for e in events] == [
        (second, "escalated"),
        (second, "acknowledged"),
        (second, "opened"),
        (first, "escalated"),
        (first, "acknowledged"),
        (first, "opened"),
    ]
    assert len({e.event_number for e in events}) == len(events)
    assert events[2].actor_principal_id == tenant.customer_id
    assert {e.category for e in events} == {pb.COMPLAINT_CATEGORY_TRANSFER}

    only_first = await every_page(tenant, auditor, pb.ListComplaintEventsRequest(complaint_id=first))
    assert [e.action for e in only_first] == ["escalated", "acknowledged", "opened"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    empty = await tenant.stub.ListComplaintEvents(
        pb.ListComplaintEventsRequest(start_time=stamp(later)), metadata=auditor
    )
    assert list(empty.complaint_events) == []


async def test_support_may_not_list_the_tenants_steps(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    await worked_complaint(tenant)
    details = await refused(tenant.stub.ListComplaintEvents(pb.ListComplaintEventsRequest(), metadata=tenant.support))
    assert details.code == grpc.StatusCode.PERMISSION_DENIED
    customer = await refused(
        tenant.stub.ListComplaintEvents(pb.ListComplaintEventsRequest(), metadata=tenant.customer)
    )
    assert customer.code == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_filters_are_refused(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    auditor = risk_stack.auth(risk_stack.tokens.member(tenant.org, "auditor"))
    start, end = around_now()
    details = await refused(
        tenant.stub.ListComplaintEvents(
            pb.ListComplaintEventsRequest(complaint_id="nope", start_time=end, end_time=start, export_id="x"),
            metadata=auditor,
        )
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {violation.field for violation in details.field_violations} == {"complaint_id", "end_time", "export_id"}


async def test_an_export_is_audited_once_and_binds_its_filters(risk_stack: RiskStack) -> None:
    tenant = Tenant(risk_stack)
    auditor = risk_stack.auth(risk_stack.tokens.member(tenant.org, "auditor"))
    await worked_complaint(tenant)
    export_id = str(uuid.uuid4())
    start, end = around_now()
    request = pb.ListComplaintEventsRequest(page_size=1, start_time=start, end_time=end, export_id=export_id)
    events = await every_page(tenant, auditor, request)
    assert len(events) == 3
    again = await every_page(
        tenant, auditor, pb.ListComplaintEventsRequest(start_time=start, end_time=end, export_id=export_id)
    )
    assert [e.event_number for e in again] == [e.event_number for e in events]
    audited = await risk_stack.app.runtime.pool.fetch(
        "SELECT action, detail FROM audit_events WHERE organization_id = $1 AND subject = $2",
        uuid.UUID(tenant.org),
        f"exports/{export_id}",
    )
    assert [row["action"] for row in audited] == ["complaint_events_exported"]

    other_period = await refused(
        tenant.stub.ListComplaintEvents(
            pb.ListComplaintEventsRequest(start_time=start, export_id=export_id), metadata=auditor
        )
    )
    assert other_period.code == grpc.StatusCode.ALREADY_EXISTS
    assert other_period.reason == "IDEMPOTENCY_KEY_REUSED"
