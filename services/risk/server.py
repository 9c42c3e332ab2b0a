"""gRPC servicer for wallet.risk.v1.RiskService: proto ⇄ domain types, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from services.kit.grpc_server import Registration, Runtime
from services.kit.request_context import current_principal
from services.kit.tokens import Principal
from services.risk import wire, wire_complaints
from services.risk.app import RiskApp
from services.risk.domain import (
    AmlReportKind,
    CaseResolution,
    CaseStatus,
    Decision,
    ListEntryType,
    ListKind,
    RuleFormat,
)
from services.risk.domain_complaints import ResolutionRequest
from services.risk.domain_lists import ListEntry
from wallet.risk.v1 import (
    risk_assessments_pb2,
    risk_cases_pb2,
    risk_complaints_pb2,
    risk_lists_pb2,
    risk_rules_pb2,
    risk_service_pb2,
    risk_service_pb2_grpc,
)

SERVICE_NAME = risk_service_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name

EnumT = TypeVar("EnumT", Decision, RuleFormat, ListKind, ListEntryType, CaseStatus, CaseResolution, AmlReportKind)


def _enum(kind: type[EnumT], value: int) -> EnumT | None:
    """Domain enum for a proto value; None for UNSPECIFIED or an unknown number (validation reports it)."""
    try:
        return kind(value) if value else None
    except ValueError:
        return None


def _principal() -> Principal:
    principal = current_principal()
    assert principal is not None, "the kit authenticates every risk RPC"
    return principal


class RiskServer(risk_service_pb2_grpc.RiskServiceServicer):
    def __init__(self, app: RiskApp) -> None:
        self._app = app

    async def Assess(
        self, request: risk_assessments_pb2.AssessRequest, context: Any
    ) -> risk_assessments_pb2.AssessResponse:
        assessment_context = wire.context_from_proto(request.context)
        result = await self._app.risk.assess(_principal(), request.assessment_id, assessment_context)
        return risk_assessments_pb2.AssessResponse(assessment=wire.assessment_to_proto(result, request.context))

    async def ListAssessments(
        self, request: risk_assessments_pb2.ListAssessmentsRequest, context: Any
    ) -> risk_assessments_pb2.ListAssessmentsResponse:
        page = await self._app.risk.list_assessments(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            account_id=request.account_id,
            decision=_enum(Decision, request.decision),
            start_s=wire.seconds(request.start_time, request.HasField("start_time")),
            end_s=wire.seconds(request.end_time, request.HasField("end_time")),
            export_id=request.export_id,
        )
        return risk_assessments_pb2.ListAssessmentsResponse(
            assessments=[wire.record_to_proto(record) for record in page.items], next_page_token=page.next_page_token
        )

    async def GetFeatures(
        self, request: risk_assessments_pb2.GetFeaturesRequest, context: Any
    ) -> risk_assessments_pb2.GetFeaturesResponse:
        features, read_at_s = await self._app.risk.get_features(
            _principal(), request.account_id, request.device_id, request.counterparty_id
        )
        return risk_assessments_pb2.GetFeaturesResponse(
            features=[wire.feature_to_proto(name, value) for name, value in sorted(features.items())],
            read_at=wire.timestamp(read_at_s),
        )

    async def PublishRules(
        self, request: risk_rules_pb2.PublishRulesRequest, context: Any
    ) -> risk_rules_pb2.PublishRulesResponse:
        published = await self._app.rules_and_lists.publish_rules(
            _principal(),
            document=request.document,
            rule_format=_enum(RuleFormat, request.format),
            expected_active_version=request.expected_active_version,
            comment=request.comment,
            request_id=request.request_id,
        )
        return risk_rules_pb2.PublishRulesResponse(
            rule_set=wire.rule_set_to_proto(published.rule_set, published.active_version, with_document=True)
        )

    async def GetRules(
        self, request: risk_rules_pb2.GetRulesRequest, context: Any
    ) -> risk_rules_pb2.GetRulesResponse:
        published = await self._app.rules_and_lists.get_rules(_principal(), request.version)
        return risk_rules_pb2.GetRulesResponse(
            rule_set=wire.rule_set_to_proto(published.rule_set, published.active_version, with_document=True)
        )

    async def ListRuleVersions(
        self, request: risk_rules_pb2.ListRuleVersionsRequest, context: Any
    ) -> risk_rules_pb2.ListRuleVersionsResponse:
        page, active = await self._app.rules_and_lists.list_rule_versions(
            _principal(), request.page_size, request.page_token
        )
        return risk_rules_pb2.ListRuleVersionsResponse(
            rule_sets=[wire.rule_set_to_proto(version, active, with_document=False) for version in page.items],
            next_page_token=page.next_page_token,
        )

    async def RollbackRules(
        self, request: risk_rules_pb2.RollbackRulesRequest, context: Any
    ) -> risk_rules_pb2.RollbackRulesResponse:
        published = await self._app.rules_and_lists.rollback_rules(
            _principal(),
            target_version=request.target_version,
            expected_active_version=request.expected_active_version,
            comment=request.comment,
            request_id=request.request_id,
        )
        return risk_rules_pb2.RollbackRulesResponse(
            rule_set=wire.rule_set_to_proto(published.rule_set, published.active_version, with_document=True)
        )

    async def DryRun(self, request: risk_rules_pb2.DryRunRequest, context: Any) -> risk_rules_pb2.DryRunResponse:
        report = await self._app.rules_and_lists.dry_run(
            _principal(),
            document=request.document,
            rule_format=_enum(RuleFormat, request.format),
            start_s=wire.seconds(request.start_time, request.HasField("start_time")),
            end_s=wire.seconds(request.end_time, request.HasField("end_time")),
            max_assessments=request.max_assessments,
        )
        return risk_rules_pb2.DryRunResponse(
            assessments_replayed=report.replayed,
            recorded_counts=_counts(report.recorded_counts),
            draft_counts=_counts(report.draft_counts),
            flipped_total=report.flipped_total,
            flipped=[
                risk_rules_pb2.FlippedAssessment(
                    assessment_id=change.record.result.assessment_id,
                    transfer_id=change.record.context.transfer_id,
                    recorded_decision=change.record.result.decision.value,  # type: ignore[arg-type]
                    draft_decision=change.draft.decision.value,  # type: ignore[arg-type]
                    recorded_score=change.record.result.score,
                    draft_score=change.draft.score,
                    draft_reason_codes=list(change.draft.reason_codes),
                )
                for change in report.flipped
            ],
            changes=[
                risk_rules_pb2.DecisionChangeCount(
                    recorded_decision=recorded.value,  # type: ignore[arg-type]
                    draft_decision=draft.value,  # type: ignore[arg-type]
                    count=count,
                )
                for (recorded, draft), count in sorted(
                    report.changes.items(), key=lambda item: (item[0][0].value, item[0][1].value)
                )
            ],
        )

    async def AddListEntry(
        self, request: risk_lists_pb2.AddListEntryRequest, context: Any
    ) -> risk_lists_pb2.AddListEntryResponse:
        entry = await self._app.rules_and_lists.add_list_entry(
            _principal(),
            ListEntry(
                list_entry_id=request.list_entry_id,
                list_kind=_enum(ListKind, request.list_kind),  # type: ignore[arg-type]
                entry_type=_enum(ListEntryType, request.entry_type),  # type: ignore[arg-type]
                value=request.value,
                reason=request.reason,
                expires_at_s=wire.seconds(request.expires_at, request.HasField("expires_at")),
            ),
        )
        return risk_lists_pb2.AddListEntryResponse(list_entry=wire.list_entry_to_proto(entry))

    async def RemoveListEntry(
        self, request: risk_lists_pb2.RemoveListEntryRequest, context: Any
    ) -> risk_lists_pb2.RemoveListEntryResponse:
        entry = await self._app.rules_and_lists.remove_list_entry(
            _principal(), request.list_entry_id, request.request_id
        )
        return risk_lists_pb2.RemoveListEntryResponse(list_entry=wire.list_entry_to_proto(entry))

    async def ListListEntries(
        self, request: risk_lists_pb2.ListListEntriesRequest, context: Any
    ) -> risk_lists_pb2.ListListEntriesResponse:
        page = await self._app.rules_and_lists.list_list_entries(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            list_kind=_enum(ListKind, request.list_kind),
            entry_type=_enum(ListEntryType, request.entry_type),
            value=request.value,
            include_inactive=request.include_inactive,
        )
        return risk_lists_pb2.ListListEntriesResponse(
            list_entries=[wire.list_entry_to_proto(entry) for entry in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListCases(
        self, request: risk_cases_pb2.ListCasesRequest, context: Any
    ) -> risk_cases_pb2.ListCasesResponse:
        page = await self._app.cases.list_cases(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            status=_enum(CaseStatus, request.status),
            account_id=request.account_id,
        )
        return risk_cases_pb2.ListCasesResponse(
            cases=[wire.case_to_proto(case) for case in page.items], next_page_token=page.next_page_token
        )

    async def GetCase(self, request: risk_cases_pb2.GetCaseRequest, context: Any) -> risk_cases_pb2.GetCaseResponse:
        case = await self._app.cases.get_case(_principal(), request.case_id)
        return risk_cases_pb2.GetCaseResponse(review_case=wire.case_to_proto(case))

    async def ResolveCase(
        self, request: risk_cases_pb2.ResolveCaseRequest, context: Any
    ) -> risk_cases_pb2.ResolveCaseResponse:
        case = await self._app.cases.resolve_case(
            _principal(),
            case_id=request.case_id,
            resolution=_enum(CaseResolution, request.resolution),
            note=request.note,
            request_id=request.request_id,
        )
        return risk_cases_pb2.ResolveCaseResponse(review_case=wire.case_to_proto(case))

    async def ListAmlReports(
        self, request: risk_cases_pb2.ListAmlReportsRequest, context: Any
    ) -> risk_cases_pb2.ListAmlReportsResponse:
        page = await self._app.cases.list_aml_reports(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            kind=_enum(AmlReportKind, request.kind),
            account_id=request.account_id,
            start_s=wire.seconds(request.start_time, request.HasField("start_time")),
            end_s=wire.seconds(request.end_time, request.HasField("end_time")),
        )
        return risk_cases_pb2.ListAmlReportsResponse(
            aml_reports=[wire.aml_report_to_proto(report) for report in page.items],
            next_page_token=page.next_page_token,
        )

    # --- complaints ---

    async def OpenComplaint(
        self, request: risk_complaints_pb2.OpenComplaintRequest, context: Any
    ) -> risk_complaints_pb2.OpenComplaintResponse:
        shown = await self._app.complaints.open_complaint(
            _principal(),
            complaint_id=request.complaint_id,
            customer_id=request.customer_id,
            category=wire_complaints.category(request.category),
            transfer_id=request.transfer_id,
            card_id=request.card_id,
            description=request.description,
            attachment_references=tuple(request.attachment_references),
        )
        return risk_complaints_pb2.OpenComplaintResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def GetComplaint(
        self, request: risk_complaints_pb2.GetComplaintRequest, context: Any
    ) -> risk_complaints_pb2.GetComplaintResponse:
        shown = await self._app.complaints.get_complaint(_principal(), request.complaint_id)
        return risk_complaints_pb2.GetComplaintResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def ListComplaints(
        self, request: risk_complaints_pb2.ListComplaintsRequest, context: Any
    ) -> risk_complaints_pb2.ListComplaintsResponse:
        page = await self._app.complaints.list_complaints(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            status=wire_complaints.status(request.status),
            category=wire_complaints.category(request.category),
            customer_id=request.customer_id,
            breached_only=request.breached_only,
        )
        return risk_complaints_pb2.ListComplaintsResponse(
            complaints=[wire_complaints.complaint_to_proto(shown) for shown in page.items],
            next_page_token=page.next_page_token,
        )

    async def AddComplaintNote(
        self, request: risk_complaints_pb2.AddComplaintNoteRequest, context: Any
    ) -> risk_complaints_pb2.AddComplaintNoteResponse:
        shown = await self._app.complaints.add_note(
            _principal(),
            complaint_note_id=request.complaint_note_id,
            complaint_id=request.complaint_id,
            text=request.text,
            visibility=wire_complaints.visibility(request.visibility),
        )
        return risk_complaints_pb2.AddComplaintNoteResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def AcknowledgeComplaint(
        self, request: risk_complaints_pb2.AcknowledgeComplaintRequest, context: Any
    ) -> risk_complaints_pb2.AcknowledgeComplaintResponse:
        shown = await self._app.complaints.acknowledge_complaint(
            _principal(), request.complaint_id, request.request_id
        )
        return risk_complaints_pb2.AcknowledgeComplaintResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def RequestComplaintInformation(
        self, request: risk_complaints_pb2.RequestComplaintInformationRequest, context: Any
    ) -> risk_complaints_pb2.RequestComplaintInformationResponse:
        shown = await self._app.complaints.request_information(
            _principal(), request.complaint_id, request.message, request.request_id
        )
        return risk_complaints_pb2.RequestComplaintInformationResponse(
            complaint=wire_complaints.complaint_to_proto(shown)
        )

    async def EscalateComplaint(
        self, request: risk_complaints_pb2.EscalateComplaintRequest, context: Any
    ) -> risk_complaints_pb2.EscalateComplaintResponse:
        shown = await self._app.complaints.escalate_complaint(
            _principal(), request.complaint_id, request.reason, request.request_id
        )
        return risk_complaints_pb2.EscalateComplaintResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def ResolveComplaint(
        self, request: risk_complaints_pb2.ResolveComplaintRequest, context: Any
    ) -> risk_complaints_pb2.ResolveComplaintResponse:
        shown = await self._app.complaints.resolve_complaint(
            _principal(),
            ResolutionRequest(
                complaint_id=request.complaint_id,
                outcome=wire_complaints.outcome(request.outcome),
                reason=request.reason,
                refund=wire_complaints.refund(request.refund_amount, request.HasField("refund_amount")),
                request_id=request.request_id,
            ),
        )
        return risk_complaints_pb2.ResolveComplaintResponse(complaint=wire_complaints.complaint_to_proto(shown))

    async def ListComplaintEvents(
        self, request: risk_complaints_pb2.ListComplaintEventsRequest, context: Any
    ) -> risk_complaints_pb2.ListComplaintEventsResponse:
        page = await self._app.complaint_events.list_events(
            _principal(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
            complaint_id=request.complaint_id,
            start_s=wire.seconds(request.start_time, request.HasField("start_time")),
            end_s=wire.seconds(request.end_time, request.HasField("end_time")),
            export_id=request.export_id,
        )
        return risk_complaints_pb2.ListComplaintEventsResponse(
            complaint_events=[wire_complaints.event_to_proto(event) for event in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetComplaintReport(
        self, request: risk_complaints_pb2.GetComplaintReportRequest, context: Any
    ) -> risk_complaints_pb2.GetComplaintReportResponse:
        report = await self._app.complaints.report(
            _principal(),
            wire.seconds(request.start_time, request.HasField("start_time")),
            wire.seconds(request.end_time, request.HasField("end_time")),
        )
        return wire_complaints.report_to_proto(report)


def _counts(counts: dict[Decision, int] | Any) -> list[risk_rules_pb2.DecisionCount]:
    return [
        risk_rules_pb2.DecisionCount(decision=decision.value, count=count)
        for decision, count in sorted(counts.items(), key=lambda item: item[0].value)
    ]


def registrations_for(app: RiskApp) -> Callable[[Runtime], list[Registration]]:
    def build(runtime: Runtime) -> list[Registration]:
        servicer = RiskServer(app)
        return [Registration(SERVICE_NAME, risk_service_pb2_grpc.add_RiskServiceServicer_to_server, servicer)]

    return build
