"""Review cases (opened by REVIEW, resolved by approvers with the ledger's ResolveTransferReview called on a fake
ledger at the edge, every step audited) and AML reports generated from the ledger event stream."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest

from services.kit.status import ErrorDetails
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_approvals_pb2, ledger_events_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_cases_pb2

pytestmark = pytest.mark.integration

APPROVE = risk_cases_pb2.CASE_RESOLUTION_APPROVE
REJECT = risk_cases_pb2.CASE_RESOLUTION_REJECT


def _id() -> str:
    return str(uuid.uuid4())


async def _review_case(stack: Any, org: str) -> tuple[str, str, str]:
    """A mule pattern (REVIEW): returns (case id, transfer id, debit account)."""
    mule = _id()
    for _ in range(5):
        await stack.publish_posted(org, debit=_id(), credit=mule, amount_minor=100_000)
    await stack.consume_all()
    transfer_id = _id()
    context = risk_assessments_pb2.AssessmentContext(
        transfer_id=transfer_id,
        debit_account_id=mule,
        credit_account_id=_id(),
        amount=money_pb2.Money(currency="EUR", amount_minor=450_000),
    )
    response = await stack.stub.Assess(
        risk_assessments_pb2.AssessRequest(assessment_id=transfer_id, context=context),
        metadata=stack.auth(stack.tokens.service(org)),
    )
    assert response.assessment.decision == risk_assessments_pb2.DECISION_REVIEW
    return response.assessment.case_id, transfer_id, mule


async def test_approving_a_case_has_the_ledger_post_the_hold(risk_stack: Any) -> None:
    org = _id()
    case_id, transfer_id, account = await _review_case(risk_stack, org)
    approver = risk_stack.auth(risk_stack.tokens.member(org, "approver", step_up=True))
    listed = await risk_stack.stub.ListCases(
        risk_cases_pb2.ListCasesRequest(status=risk_cases_pb2.CASE_STATUS_OPEN, account_id=account), metadata=approver
    )
    assert [c.case_id for c in listed.cases] == [case_id]
    assert listed.cases[0].amount.amount_minor == 450_000
    assert "MULE_PATTERN" in listed.cases[0].assessment.reason_codes
    hold = ledger_events_pb2.TransferPending(case_id=case_id)
    hold.hold_expires_at.FromSeconds(int(time.time()) + 3600)
    await risk_stack.xadd(org, hold, account)
    await risk_stack.consume_all()
    request_id = _id()
    resolved = await risk_stack.stub.ResolveCase(
        risk_cases_pb2.ResolveCaseRequest(
            case_id=case_id, resolution=APPROVE, note="customer confirmed", request_id=request_id
        ),
        metadata=approver,
    )
    case = resolved.review_case
    assert case.status == risk_cases_pb2.CASE_STATUS_APPROVED
    assert case.resolution_note == "customer confirmed"
    assert case.HasField("hold_expires_at")
    assert [event.action for event in case.history] == ["opened", "approved", "ledger_posted"]
    calls = [(o, r) for o, r in risk_stack.ledger.calls if r.case_id == case_id]
    assert len(calls) == 1
    called_org, call = calls[0]
    assert called_org == org
    assert call.transfer_id == transfer_id
    assert call.outcome == ledger_approvals_pb2.REVIEW_OUTCOME_APPROVE
    again = await risk_stack.stub.ResolveCase(
        risk_cases_pb2.ResolveCaseRequest(
            case_id=case_id, resolution=APPROVE, note="customer confirmed", request_id=request_id
        ),
        metadata=approver,
    )
    assert again.review_case.status == risk_cases_pb2.CASE_STATUS_APPROVED
    assert len([r for _, r in risk_stack.ledger.calls if r.case_id == case_id]) == 1
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stack.stub.ResolveCase(
            risk_cases_pb2.ResolveCaseRequest(
                case_id=case_id, resolution=REJECT, note="changed my mind", request_id=_id()
            ),
            metadata=approver,
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ErrorDetails.from_rpc_error(raised.value).reason == "CASE_ALREADY_RESOLVED"
    viewed = await risk_stack.stub.GetCase(risk_cases_pb2.GetCaseRequest(case_id=case_id), metadata=approver)
    assert viewed.review_case.history[-1].action == "viewed"


async def test_rejecting_voids_and_a_ledger_outage_is_retried_with_the_same_request(risk_stack: Any) -> None:
    org = _id()
    case_id, _, _ = await _review_case(risk_stack, org)
    approver = risk_stack.auth(risk_stack.tokens.member(org, "approver", step_up=True))
    request = risk_cases_pb2.ResolveCaseRequest(
        case_id=case_id, resolution=REJECT, note="mule account", request_id=_id()
    )
    risk_stack.ledger.fail_next = 3
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stack.stub.ResolveCase(request, metadata=approver)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    resolved = await risk_stack.stub.ResolveCase(request, metadata=approver)
    assert resolved.review_case.status == risk_cases_pb2.CASE_STATUS_REJECTED
    actions = [event.action for event in resolved.review_case.history]
    assert actions == ["opened", "rejected", "ledger_call_failed", "ledger_voided"]
    voids = [r for _, r in risk_stack.ledger.calls if r.case_id == case_id]
    assert [r.outcome for r in voids] == [ledger_approvals_pb2.REVIEW_OUTCOME_REJECT]


async def test_resolving_needs_an_approver_with_step_up_and_cases_are_tenant_scoped(risk_stack: Any) -> None:
    org = _id()
    case_id, _, _ = await _review_case(risk_stack, org)
    request = risk_cases_pb2.ResolveCaseRequest(case_id=case_id, resolution=APPROVE, note="ok", request_id=_id())
    with pytest.raises(grpc.aio.AioRpcError) as analyst:
        await risk_stack.stub.ResolveCase(
            request, metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
        )
    assert analyst.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as no_step_up:
        await risk_stack.stub.ResolveCase(
            request, metadata=risk_stack.auth(risk_stack.tokens.member(org, "approver"))
        )
    assert ErrorDetails.from_rpc_error(no_step_up.value).reason == "STEP_UP_REQUIRED"
    stranger = risk_stack.auth(risk_stack.tokens.member(_id(), "approver", step_up=True))
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await risk_stack.stub.GetCase(risk_cases_pb2.GetCaseRequest(case_id=case_id), metadata=stranger)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await risk_stack.stub.ResolveCase(
            risk_cases_pb2.ResolveCaseRequest(case_id="x", note=" ", request_id="y"),
            metadata=risk_stack.auth(risk_stack.tokens.member(org, "approver", step_up=True)),
        )
    assert {v.field for v in ErrorDetails.from_rpc_error(bad.value).field_violations} == {
        "case_id",
        "request_id",
        "resolution",
        "note",
    }


async def test_an_expired_hold_expires_its_case(risk_stack: Any) -> None:
    org = _id()
    case_id, transfer_id, account = await _review_case(risk_stack, org)
    expired = ledger_events_pb2.TransferExpired(transfer=ledger_events_pb2.TransferFacts(transfer_id=transfer_id))
    await risk_stack.xadd(org, expired, account)
    await risk_stack.consume_all()
    case = await risk_stack.stub.GetCase(
        risk_cases_pb2.GetCaseRequest(case_id=case_id),
        metadata=risk_stack.auth(risk_stack.tokens.member(org, "approver")),
    )
    assert case.review_case.status == risk_cases_pb2.CASE_STATUS_EXPIRED
    assert case.review_case.history[1].action == "expired"


async def test_large_transactions_and_structuring_produce_aml_reports_once(risk_stack: Any) -> None:
    org, account, payee = _id(), _id(), _id()
    large_event = uuid.uuid4()
    large = await risk_stack.publish_posted(
        org, debit=account, credit=payee, amount_minor=2_500_000, event_id=large_event
    )
    await risk_stack.publish_posted(  # redelivered: same event, same transfer
        org, debit=account, credit=payee, amount_minor=2_500_000, event_id=large_event, transfer_id=large
    )
    near = [
        await risk_stack.publish_posted(org, debit=account, credit=payee, amount_minor=amount)
        for amount in (950_000, 990_000, 910_000, 920_000)
    ]
    await risk_stack.consume_all()
    auditor = risk_stack.auth(risk_stack.tokens.member(org, "auditor"))
    reports = await risk_stack.stub.ListAmlReports(risk_cases_pb2.ListAmlReportsRequest(), metadata=auditor)
    kinds = sorted(r.kind for r in reports.aml_reports)
    assert kinds == [risk_cases_pb2.AML_REPORT_KIND_LARGE_TRANSACTION, risk_cases_pb2.AML_REPORT_KIND_STRUCTURING]
    by_kind = {r.kind: r for r in reports.aml_reports}
    large_report = by_kind[risk_cases_pb2.AML_REPORT_KIND_LARGE_TRANSACTION]
    assert list(large_report.transfer_ids) == [large]
    assert large_report.threshold.amount_minor == 1_000_000
    structuring = by_kind[risk_cases_pb2.AML_REPORT_KIND_STRUCTURING]
    assert sorted(structuring.transfer_ids) == sorted(near[:3])
    assert structuring.total_amount.amount_minor == 950_000 + 990_000 + 910_000
    only_structuring = await risk_stack.stub.ListAmlReports(
        risk_cases_pb2.ListAmlReportsRequest(kind=risk_cases_pb2.AML_REPORT_KIND_STRUCTURING, account_id=account),
        metadata=auditor,
    )
    assert len(only_structuring.aml_reports) == 1
