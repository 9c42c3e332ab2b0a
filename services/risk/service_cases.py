"""Use cases for review cases and AML reports, and the reactions to ledger events (feature windows, case holds,
AML report generation)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.kit.errors import FieldViolation, Unavailable, invalid
from services.kit.ids import parse_uuid, uuid7
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import Principal
from services.risk import limits
from services.risk.anomaly import AnomalyModels
from services.risk.config import RiskConfig
from services.risk.domain import (
    AmlReport,
    AmlReportKind,
    AssessmentContext,
    CaseResolution,
    CaseStatus,
    ReviewCase,
    resolved_status,
    validate_resolution,
)
from services.risk.feature_windows import AppliedTransfer, HotRead, PostedTransfer
from services.risk.features import ThresholdPolicy, anomaly_vector, assessment_features
from services.risk.service import Page, cursor_after, page_cursor, to_datetime


class Cases(Protocol):
    async def get(self, organization_id: str, case_id: str) -> ReviewCase: ...
    async def page(
        self,
        organization_id: str,
        *,
        status: CaseStatus | None,
        account_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ReviewCase]: ...
    async def resolve(
        self, organization_id: str, case_id: str, decide: Decide, *, actor: str, note: str, request_id: str
    ) -> None: ...
    async def record_event(self, organization_id: str, case_id: str, action: str, actor: str, note: str) -> None: ...
    async def confirm_ledger(self, organization_id: str, case_id: str, action: str) -> None: ...
    async def set_hold_expiry(self, organization_id: str, case_id: str, hold_expires_at_s: float) -> None: ...
    async def expire_for_transfer(self, organization_id: str, transfer_id: str) -> int: ...


class Decide(Protocol):
    def __call__(self, case: ReviewCase, /) -> CaseStatus | None: ...


class AmlReports(Protocol):
    async def insert(self, organization_id: str, report: AmlReport, trigger_transfer_id: str) -> bool: ...
    async def latest_window_end(self, organization_id: str, account_id: str, kind: AmlReportKind) -> float | None: ...
    async def page(
        self,
        organization_id: str,
        *,
        kind: AmlReportKind | None,
        account_id: uuid.UUID | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AmlReport]: ...


class LedgerUnavailable(Exception):
    """The ledger did not confirm a review outcome after bounded retries (or risk could not get a token for it)."""


class LedgerReviews(Protocol):
    async def resolve_transfer_review(
        self, *, organization_id: str, transfer_id: str, case_id: str, approve: bool, resolved_by_principal_id: str
    ) -> None: ...


class FeatureWriter(Protocol):
    async def apply_posted(self, transfer: PostedTransfer) -> AppliedTransfer: ...
    async def read(
        self,
        organization_id: str,
        account_id: str,
        device_id: str,
        payee_id: str,
        now_s: float,
        assessment_id: str = "",
    ) -> HotRead: ...


@dataclass(frozen=True, slots=True)
class PostedFacts:
    """What a TransferPosted event says, decoded from the envelope by the consumer."""

    organization_id: str
    event_id: str
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    debit_customer_id: str
    counterparty_id: str
    device_id: str
    amount_minor: int
    currency: str
    posted_at_s: float


class CaseService:
    def __init__(
        self,
        config: RiskConfig,
        *,
        cases: Cases,
        reports: AmlReports,
        ledger: LedgerReviews,
        windows: FeatureWriter,
        models: AnomalyModels,
    ) -> None:
        self._models = models
        self._cases = cases
        self._reports = reports
        self._ledger = ledger
        self._windows = windows
        self._config = config
        self._policy = ThresholdPolicy(config.reporting_threshold_minor, config.structuring_band_pct)

    async def get_case(self, principal: Principal, case_id: str) -> ReviewCase:
        violations: list[FieldViolation] = []
        parse_uuid(case_id, "case_id", violations)
        if violations:
            raise invalid(violations)
        org = principal.organization_id
        await self._cases.get(org, case_id)  # NOT_FOUND before anything is audited
        await self._cases.record_event(org, case_id, "viewed", principal.subject, "")
        return await self._cases.get(org, case_id)

    async def list_cases(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        status: CaseStatus | None,
        account_id: str,
    ) -> Page:
        violations: list[FieldViolation] = []
        account = parse_uuid(account_id, "account_id", violations, required=False)
        if violations:
            raise invalid(violations)
        size = page_size(page_size_requested)
        filters = {"status": status and status.value, "account_id": account_id}
        after = cursor_after(decode_page_token(page_token, filters))
        cases = await self._cases.page(
            principal.organization_id, status=status, account_id=account, after=after, limit=size + 1
        )
        page, token = next_page(cases, size, lambda last: page_cursor(last.opened_at_s, last.case_id), filters)
        return Page(page, token)

    async def resolve_case(
        self, principal: Principal, *, case_id: str, resolution: CaseResolution | None, note: str, request_id: str
    ) -> ReviewCase:
        """Records the approver's decision, then has the ledger post or void the hold. A retry with the same
        request_id after a ledger failure repeats only the ledger call."""
        validate_resolution(case_id, resolution, note, request_id)
        assert resolution is not None
        org = principal.organization_id

        def decide(case: ReviewCase) -> CaseStatus | None:
            return resolved_status(case, resolution, request_id)

        await self._cases.resolve(org, case_id, decide, actor=principal.subject, note=note, request_id=request_id)
        case = await self._cases.get(org, case_id)
        if case.status in (CaseStatus.APPROVED, CaseStatus.REJECTED) and not case.ledger_confirmed:
            approve = case.status is CaseStatus.APPROVED
            try:
                await self._ledger.resolve_transfer_review(
                    organization_id=org,
                    transfer_id=case.transfer_id,
                    case_id=case.case_id,
                    approve=approve,
                    resolved_by_principal_id=principal.subject,
                )
            except LedgerUnavailable as err:
                await self._cases.record_event(org, case_id, "ledger_call_failed", "", str(err))
                raise Unavailable(
                    "the decision is recorded but the ledger did not confirm it; retry with the same request_id",
                    retry_after_s=1.0,
                ) from err
            await self._cases.confirm_ledger(org, case_id, "ledger_posted" if approve else "ledger_voided")
            case = await self._cases.get(org, case_id)
        return case

    async def list_aml_reports(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        kind: AmlReportKind | None,
        account_id: str,
        start_s: float | None,
        end_s: float | None,
    ) -> Page:
        violations: list[FieldViolation] = []
        account = parse_uuid(account_id, "account_id", violations, required=False)
        if violations:
            raise invalid(violations)
        size = page_size(page_size_requested)
        filters = {"kind": kind and kind.value, "account_id": account_id, "start": start_s, "end": end_s}
        after = cursor_after(decode_page_token(page_token, filters))
        reports = await self._reports.page(
            principal.organization_id,
            kind=kind,
            account_id=account,
            start=to_datetime(start_s),
            end=to_datetime(end_s),
            after=after,
            limit=size + 1,
        )
        page, token = next_page(
            reports, size, lambda last: page_cursor(last.created_at_s, last.aml_report_id), filters
        )
        return Page(page, token)

    # --- reactions to ledger events (idempotent: events arrive at least once) ---

    async def on_transfer_posted(self, facts: PostedFacts) -> None:
        near = self._policy.is_near(facts.amount_minor)
        payee_id = facts.counterparty_id or facts.credit_account_id
        # What Assess would have seen for this payment, read before the windows count it: the model's sample.
        before = await self._windows.read(
            facts.organization_id, facts.debit_account_id, facts.device_id, payee_id, facts.posted_at_s
        )
        context = AssessmentContext(
            facts.debit_account_id,
            facts.credit_account_id,
            facts.amount_minor,
            facts.currency,
            device_id=facts.device_id,
            counterparty_id=facts.counterparty_id,
        )
        sample = anomaly_vector(assessment_features(context, before.state, facts.posted_at_s, self._policy))
        applied = await self._windows.apply_posted(
            PostedTransfer(
                organization_id=facts.organization_id,
                event_id=facts.event_id,
                transfer_id=facts.transfer_id,
                debit_account_id=facts.debit_account_id,
                credit_account_id=facts.credit_account_id,
                payee_id=payee_id,
                device_id=facts.device_id,
                amount_minor=facts.amount_minor,
                posted_at_s=facts.posted_at_s,
                near_threshold=near,
            )
        )
        if applied.fresh:
            self._models.learn(facts.organization_id, sample)
        threshold = self._config.reporting_threshold_minor
        if facts.amount_minor >= threshold:
            await self._report(facts, AmlReportKind.LARGE_TRANSACTION, ((facts.transfer_id, facts.amount_minor),))
        if near and len(applied.near_threshold_transfers) >= self._config.structuring_count_min:
            latest_end = await self._reports.latest_window_end(
                facts.organization_id, facts.debit_account_id, AmlReportKind.STRUCTURING
            )
            # One structuring report per account per 24 h; later ones would repeat the same transfers.
            if latest_end is None or facts.posted_at_s - latest_end >= limits.DAY_S:
                await self._report(facts, AmlReportKind.STRUCTURING, applied.near_threshold_transfers)

    async def _report(self, facts: PostedFacts, kind: AmlReportKind, transfers: tuple[tuple[str, int], ...]) -> None:
        window_start = (
            facts.posted_at_s if kind is AmlReportKind.LARGE_TRANSACTION else facts.posted_at_s - limits.DAY_S
        )
        report = AmlReport(
            aml_report_id=str(uuid7()),
            kind=kind,
            account_id=facts.debit_account_id,
            customer_id=facts.debit_customer_id,
            transfer_ids=tuple(transfer_id for transfer_id, _ in transfers),
            total_amount_minor=sum(amount for _, amount in transfers),
            currency=facts.currency,
            threshold_minor=self._config.reporting_threshold_minor,
            window_start_s=window_start,
            window_end_s=facts.posted_at_s,
        )
        await self._reports.insert(facts.organization_id, report, facts.transfer_id)

    async def on_transfer_pending(self, organization_id: str, case_id: str, hold_expires_at_s: float) -> None:
        if case_id:
            await self._cases.set_hold_expiry(organization_id, case_id, hold_expires_at_s)

    async def on_transfer_expired(self, organization_id: str, transfer_id: str) -> None:
        await self._cases.expire_for_transfer(organization_id, transfer_id)
