"""Proto ⇄ domain conversions for the servicer (no rules here: names, enums, timestamps)."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from services.risk.domain import (
    AmlReport,
    AssessmentContext,
    AssessmentRecord,
    AssessmentResult,
    CaseEvent,
    ReviewCase,
    RuleVersion,
)
from services.risk.domain_lists import ListEntry
from services.risk.features import FeatureValue
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_transfers_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_cases_pb2, risk_lists_pb2, risk_rules_pb2


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    value = timestamp_pb2.Timestamp()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def seconds(value: timestamp_pb2.Timestamp, present: bool) -> float | None:
    return value.ToNanoseconds() / 1e9 if present else None


def _enum_name(name: str, prefix: str) -> str:
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def context_from_proto(context: risk_assessments_pb2.AssessmentContext) -> AssessmentContext:
    auth = context.auth_strength
    return AssessmentContext(
        debit_account_id=context.debit_account_id,
        credit_account_id=context.credit_account_id,
        amount_minor=context.amount.amount_minor,
        currency=context.amount.currency,
        transfer_id=context.transfer_id,
        debit_customer_id=context.debit_customer_id,
        credit_customer_id=context.credit_customer_id,
        debit_account_kind=_enum_name(
            ledger_accounts_pb2.AccountKind.Name(context.debit_account_kind), "ACCOUNT_KIND_"
        ),
        credit_account_kind=_enum_name(
            ledger_accounts_pb2.AccountKind.Name(context.credit_account_kind), "ACCOUNT_KIND_"
        ),
        transfer_kind=_enum_name(ledger_transfers_pb2.TransferKind.Name(context.transfer_kind), "TRANSFER_KIND_"),
        channel=_enum_name(risk_assessments_pb2.Channel.Name(context.channel), "CHANNEL_"),
        device_id=context.device_id,
        ip_address=context.ip_address,
        principal_id=context.principal_id,
        actor_kind=_enum_name(risk_assessments_pb2.ActorKind.Name(context.actor_kind), "ACTOR_KIND_"),
        amr=tuple(auth.amr),
        acr=auth.acr,
        auth_time_s=auth.auth_time.seconds if auth.HasField("auth_time") else None,
        counterparty_id=context.counterparty_id,
    )


def _enum_value(enum: type, prefix: str, name: str) -> int:
    if not name:
        return 0
    value: int = enum.Value(prefix + name)  # type: ignore[attr-defined]
    return value


def context_to_proto(context: AssessmentContext) -> risk_assessments_pb2.AssessmentContext:
    auth = risk_assessments_pb2.AuthStrength(amr=list(context.amr), acr=context.acr)
    if context.auth_time_s is not None:
        auth.auth_time.seconds = context.auth_time_s
    return risk_assessments_pb2.AssessmentContext(
        transfer_id=context.transfer_id,
        debit_account_id=context.debit_account_id,
        credit_account_id=context.credit_account_id,
        debit_customer_id=context.debit_customer_id,
        credit_customer_id=context.credit_customer_id,
        debit_account_kind=_enum_value(ledger_accounts_pb2.AccountKind, "ACCOUNT_KIND_", context.debit_account_kind),  # type: ignore[arg-type]
        credit_account_kind=_enum_value(
            ledger_accounts_pb2.AccountKind, "ACCOUNT_KIND_", context.credit_account_kind
        ),  # type: ignore[arg-type]
        amount=money_pb2.Money(currency=context.currency, amount_minor=context.amount_minor),
        transfer_kind=_enum_value(ledger_transfers_pb2.TransferKind, "TRANSFER_KIND_", context.transfer_kind),  # type: ignore[arg-type]
        channel=_enum_value(risk_assessments_pb2.Channel, "CHANNEL_", context.channel),  # type: ignore[arg-type]
        device_id=context.device_id,
        ip_address=context.ip_address,
        principal_id=context.principal_id,
        actor_kind=_enum_value(risk_assessments_pb2.ActorKind, "ACTOR_KIND_", context.actor_kind),  # type: ignore[arg-type]
        auth_strength=auth,
        counterparty_id=context.counterparty_id,
    )


def assessment_to_proto(
    result: AssessmentResult, context: risk_assessments_pb2.AssessmentContext
) -> risk_assessments_pb2.Assessment:
    """``context`` as received (Assess echoes the request's) or rebuilt from a record."""
    assessment = risk_assessments_pb2.Assessment(
        assessment_id=result.assessment_id,
        decision=result.decision.value,  # type: ignore[arg-type]
        score=result.score,
        reason_codes=list(result.reason_codes),
        rules_version=result.rules_version,
        case_id=result.case_id,
        anomaly_score=result.anomaly_score,
        anomaly_shadow=result.anomaly_shadow,
        context=context,
        assessed_at=timestamp(result.assessed_at_s),
    )
    assessment.evaluation_duration.FromMicroseconds(result.evaluation_us)
    return assessment


def record_to_proto(record: AssessmentRecord) -> risk_assessments_pb2.Assessment:
    return assessment_to_proto(record.result, context_to_proto(record.context))


def feature_to_proto(name: str, value: FeatureValue) -> risk_assessments_pb2.FeatureValue:
    if isinstance(value, bool):
        return risk_assessments_pb2.FeatureValue(name=name, boolean_value=value)
    if isinstance(value, int):
        return risk_assessments_pb2.FeatureValue(name=name, integer_value=value)
    if isinstance(value, float):
        return risk_assessments_pb2.FeatureValue(name=name, real_value=value)
    raise AssertionError(f"feature {name} has no numeric value")


def rule_set_to_proto(version: RuleVersion, active_version: int, *, with_document: bool) -> risk_rules_pb2.RuleSet:
    return risk_rules_pb2.RuleSet(
        version=version.version,
        document=version.document if with_document else "",
        format=version.format.value,  # type: ignore[arg-type]
        checksum=version.checksum,
        comment=version.comment,
        active=version.version == active_version,
        copied_from_version=version.copied_from_version,
        published_by_principal_id=version.published_by_principal_id,
        published_at=timestamp(version.published_at_s) if version.published_at_s else None,
    )


def list_entry_to_proto(entry: ListEntry) -> risk_lists_pb2.ListEntry:
    return risk_lists_pb2.ListEntry(
        list_entry_id=entry.list_entry_id,
        list_kind=entry.list_kind.value,  # type: ignore[arg-type]
        entry_type=entry.entry_type.value,  # type: ignore[arg-type]
        value=entry.value,
        reason=entry.reason,
        expires_at=timestamp(entry.expires_at_s),
        created_by_principal_id=entry.created_by_principal_id,
        created_at=timestamp(entry.created_at_s),
        removed_at=timestamp(entry.removed_at_s),
    )


def _case_event_to_proto(event: CaseEvent) -> risk_cases_pb2.CaseEvent:
    return risk_cases_pb2.CaseEvent(
        action=event.action,
        actor_principal_id=event.actor_principal_id,
        note=event.note,
        occurred_at=timestamp(event.occurred_at_s),
    )


def case_to_proto(case: ReviewCase) -> risk_cases_pb2.ReviewCase:
    context = case.assessment.context
    return risk_cases_pb2.ReviewCase(
        case_id=case.case_id,
        transfer_id=case.transfer_id,
        assessment=record_to_proto(case.assessment),
        status=case.status.value,  # type: ignore[arg-type]
        amount=money_pb2.Money(currency=context.currency, amount_minor=context.amount_minor),
        hold_expires_at=timestamp(case.hold_expires_at_s),
        resolved_by_principal_id=case.resolved_by_principal_id,
        resolution_note=case.resolution_note,
        opened_at=timestamp(case.opened_at_s),
        closed_at=timestamp(case.closed_at_s),
        history=[_case_event_to_proto(event) for event in case.history],
    )


def aml_report_to_proto(report: AmlReport) -> risk_cases_pb2.AmlReport:
    return risk_cases_pb2.AmlReport(
        aml_report_id=report.aml_report_id,
        kind=report.kind.value,  # type: ignore[arg-type]
        account_id=report.account_id,
        customer_id=report.customer_id,
        transfer_ids=list(report.transfer_ids),
        total_amount=money_pb2.Money(currency=report.currency, amount_minor=report.total_amount_minor),
        threshold=money_pb2.Money(currency=report.currency, amount_minor=report.threshold_minor),
        window_start=timestamp(report.window_start_s),
        window_end=timestamp(report.window_end_s),
        created_at=timestamp(report.created_at_s),
    )
