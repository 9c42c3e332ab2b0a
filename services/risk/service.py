"""Risk use cases for assessment, rules and lists: one async method per RPC.

Assess is the hot path: one pipelined Redis round trip (features, rules and lists versions, idempotency record),
rules and lists compiled and cached in memory (reloaded when the version key in Redis moves, or after
``RULES_CACHE_TTL_S`` without one), the record written by the batched recorder. Cases and AML reports are in
``service_cases.py``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import Counter

from services.kit.errors import FieldViolation, IdempotencyKeyReused, first_differing_field, invalid
from services.kit.ids import parse_uuid, uuid7
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import Principal
from services.risk import limits
from services.risk.anomaly import AnomalyModels
from services.risk.config import RiskConfig
from services.risk.domain import (
    AssessmentContext,
    AssessmentRecord,
    AssessmentResult,
    Decision,
    ListEntryType,
    ListKind,
    RuleFormat,
    RuleVersion,
    rules_checksum,
    validate_context,
)
from services.risk.domain_lists import ListEntry, ListMatcher
from services.risk.feature_windows import HotRead, StoredDecision, lists_version_key, rules_version_key
from services.risk.features import (
    EntityState,
    FeatureValue,
    ThresholdPolicy,
    anomaly_vector,
    assessment_features,
    device_features,
    history_features,
    window_features,
)
from services.risk.rules import CompiledRuleSet, compile_document

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.json")
DECISIONS = Counter(
    "wallet_risk_decisions_total",
    "Assess decisions made (replays not counted), by decision and by what decided: rules or a list hit.",
    ["decision", "source"],
)
Clock = Callable[[], float]


class Windows(Protocol):
    async def read(
        self,
        organization_id: str,
        account_id: str,
        device_id: str,
        payee_id: str,
        now_s: float,
        assessment_id: str = "",
    ) -> HotRead: ...
    async def store_decision(
        self, organization_id: str, assessment_id: str, body: dict[str, Any]
    ) -> StoredDecision: ...
    async def publish_version(self, key: str, version: int, *, only_if_missing: bool = False) -> None: ...
    async def touch_version(self, key: str, *, only_if_missing: bool = False) -> str: ...


class Rules(Protocol):
    async def active_version_number(self, organization_id: str) -> int: ...
    async def get(self, organization_id: str, version: int) -> RuleVersion | None: ...
    async def find_by_request(self, organization_id: str, request_id: str) -> RuleVersion | None: ...
    async def publish(
        self, organization_id: str, expected_active_version: int, version: RuleVersion
    ) -> RuleVersion: ...
    async def list_versions(
        self, organization_id: str, before_version: int | None, limit: int
    ) -> list[RuleVersion]: ...


class Lists(Protocol):
    async def add(self, organization_id: str, entry: ListEntry) -> tuple[ListEntry, bool]: ...
    async def remove(self, organization_id: str, list_entry_id: str, request_id: str, actor: str) -> ListEntry: ...
    async def active(self, organization_id: str, limit: int) -> list[ListEntry]: ...
    async def page(
        self,
        organization_id: str,
        *,
        list_kind: ListKind | None,
        entry_type: ListEntryType | None,
        value: str,
        include_inactive: bool,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ListEntry]: ...


class Assessments(Protocol):
    async def page(
        self,
        organization_id: str,
        *,
        account_id: uuid.UUID | None,
        decision: Decision | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AssessmentRecord]: ...
    async def audit_export(
        self, organization_id: str, export_id: uuid.UUID, actor: str, detail: dict[str, str]
    ) -> dict[str, str] | None: ...
    async def replay_page(
        self,
        organization_id: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AssessmentRecord]: ...


class Recorder(Protocol):
    async def submit(self, record: AssessmentRecord) -> None: ...


class CaseOpener(Protocol):
    async def open_case(self, case_id: str, record: AssessmentRecord) -> str: ...


@dataclass(frozen=True, slots=True)
class _CachedRules:
    version: int
    compiled: CompiledRuleSet
    loaded_at_s: float


@dataclass(frozen=True, slots=True)
class _CachedLists:
    stamp: str | None
    matcher: ListMatcher
    loaded_at_s: float


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Any]
    next_page_token: str


def default_rule_version() -> RuleVersion:
    document = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    return RuleVersion(0, document, RuleFormat.JSON, rules_checksum(document), "built-in default", 0, "", 0.0)


def _stored_body(result: AssessmentResult) -> dict[str, Any]:
    return {
        "d": result.decision.value,
        "s": result.score,
        "r": list(result.reason_codes),
        "v": result.rules_version,
        "us": result.evaluation_us,
        "a": result.anomaly_score,
        "sh": result.anomaly_shadow,
        "t": result.assessed_at_s,
        "h": result.context_digest,
        "c": result.case_id,
    }


def _from_stored(assessment_id: str, stored: StoredDecision) -> AssessmentResult:
    body = stored.body
    return AssessmentResult(
        assessment_id=assessment_id,
        decision=Decision(body["d"]),
        score=body["s"],
        reason_codes=tuple(body["r"]),
        rules_version=body["v"],
        evaluation_us=body["us"],
        anomaly_score=body["a"],
        anomaly_shadow=body["sh"],
        assessed_at_s=body["t"],
        context_digest=body["h"],
        case_id=body["c"],
    )


def page_cursor(moment_s: float, item_id: str) -> dict[str, Any]:
    return {"t": moment_s, "id": item_id}


def to_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def cursor_after(cursor: dict[str, Any] | None) -> tuple[datetime, uuid.UUID] | None:
    """The keyset position of a decoded page token."""
    if cursor is None:
        return None
    return datetime.fromtimestamp(float(cursor["t"]), UTC), uuid.UUID(str(cursor["id"]))


class RiskService:
    def __init__(
        self,
        config: RiskConfig,
        *,
        windows: Windows,
        rules: Rules,
        lists: Lists,
        assessments: Assessments,
        recorder: Recorder,
        cases: CaseOpener,
        models: AnomalyModels,
        clock: Clock = time.time,
    ) -> None:
        self._config = config
        self._windows = windows
        self._rules = rules
        self._lists = lists
        self._assessments = assessments
        self._recorder = recorder
        self._cases = cases
        self._models = models
        self._clock = clock
        self._policy = ThresholdPolicy(
            config.reporting_threshold_minor, config.structuring_band_pct, config.new_device_hours
        )
        self._default_rules = default_rule_version()
        self._default_compiled = compile_document(self._default_rules.document, RuleFormat.JSON)
        self._rules_cache: dict[str, _CachedRules] = {}
        self._lists_cache: dict[str, _CachedLists] = {}

    # --- Assess ---

    async def assess(self, principal: Principal, assessment_id: str, context: AssessmentContext) -> AssessmentResult:
        started = time.perf_counter()
        validate_context(assessment_id, context)
        org = principal.organization_id
        now_s = self._clock()
        hot = await self._windows.read(
            org, context.debit_account_id, context.device_id, context.payee_id, now_s, assessment_id
        )
        digest = context.digest()
        if hot.stored_decision is not None:
            return self._replayed(assessment_id, hot.stored_decision, digest)
        rules = await self._rules_for(org, hot.rules_version, now_s)
        matcher = await self._lists_for(org, hot.lists_version, now_s)
        features = assessment_features(context, hot.state, now_s, self._policy)
        anomaly_score = self._models.score(org, anomaly_vector(features))
        features["model.anomaly_score"] = anomaly_score if rules.compiled.anomaly_active else 0
        hit = matcher.match(context, now_s)
        reasons: tuple[str, ...]
        if hit is not None and hit.list_kind is ListKind.BLOCK:
            decision, score, reasons, list_outcome = Decision.DENY, limits.SCORE_MAX, (hit.reason_code,), "block"
        elif hit is not None:
            decision, score, reasons, list_outcome = Decision.ALLOW, 0, (hit.reason_code,), "allow"
        else:
            outcome = rules.compiled.evaluate(features)
            decision, score, reasons, list_outcome = outcome.decision, outcome.score, outcome.reason_codes, ""
        result = AssessmentResult(
            assessment_id=assessment_id,
            decision=decision,
            score=score,
            reason_codes=reasons,
            rules_version=rules.version,
            evaluation_us=int((time.perf_counter() - started) * 1e6),
            anomaly_score=anomaly_score,
            anomaly_shadow=not rules.compiled.anomaly_active,
            assessed_at_s=now_s,
            context_digest=digest,
        )
        record = AssessmentRecord(org, result, context, features, list_outcome)
        if decision is Decision.REVIEW:
            # Opened before the decision is stored, so a replayed id never points at a case that does not exist.
            case_id = await self._cases.open_case(str(uuid7()), record)
            result = replace(result, case_id=case_id)
            record = replace(record, result=result)
        stored = await self._windows.store_decision(org, assessment_id, _stored_body(result))
        if stored.body["t"] != now_s or stored.body["h"] != digest:
            return self._replayed(assessment_id, stored, digest)  # a concurrent twin won
        await self._recorder.submit(record)
        DECISIONS.labels(decision.name.lower(), f"list_{list_outcome}" if list_outcome else "rules").inc()
        return result

    @staticmethod
    def _replayed(assessment_id: str, stored: StoredDecision, digest: str) -> AssessmentResult:
        if stored.body["h"] != digest:
            raise IdempotencyKeyReused("assessment_id", "context")
        return _from_stored(assessment_id, stored)

    async def _rules_for(self, org: str, published_version: int | None, now_s: float) -> _CachedRules:
        cached = self._rules_cache.get(org)
        if cached is not None:
            if published_version == cached.version:
                return cached
            if published_version is None and now_s - cached.loaded_at_s < limits.RULES_CACHE_TTL_S:
                return cached
        version = await self._rules.active_version_number(org)
        if cached is not None and cached.version == version:
            fresh = replace(cached, loaded_at_s=now_s)
        else:
            fresh = _CachedRules(version, await self._compiled(org, version), now_s)
        self._rules_cache[org] = fresh
        if published_version is None:
            await self._windows.publish_version(rules_version_key(org), version, only_if_missing=True)
        return fresh

    async def _compiled(self, org: str, version: int) -> CompiledRuleSet:
        if version == 0:
            return self._default_compiled
        stored = await self._rules.get(org, version)
        assert stored is not None, "the active rules version must exist"
        return compile_document(stored.document, stored.format)

    async def _lists_for(self, org: str, stamp: str | None, now_s: float) -> ListMatcher:
        cached = self._lists_cache.get(org)
        if cached is not None:
            if stamp is not None and stamp == cached.stamp:
                return cached.matcher
            if stamp is None and now_s - cached.loaded_at_s < limits.RULES_CACHE_TTL_S:
                return cached.matcher
        if stamp is None:
            stamp = await self._windows.touch_version(lists_version_key(org), only_if_missing=True)
        entries = await self._lists.active(org, limits.LIST_ENTRIES_CACHED_MAX)
        matcher = ListMatcher(entries)
        self._lists_cache[org] = _CachedLists(stamp, matcher, now_s)
        return matcher

    async def list_assessments(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        account_id: str,
        decision: Decision | None,
        start_s: float | None,
        end_s: float | None,
        export_id: str = "",
    ) -> Page:
        violations: list[FieldViolation] = []
        account = parse_uuid(account_id, "account_id", violations, required=False)
        export = parse_uuid(export_id, "export_id", violations, required=False)
        if violations:
            raise invalid(violations)
        size = page_size(page_size_requested)
        filters = {"account_id": account_id, "decision": decision and decision.value, "start": start_s, "end": end_s}
        if export is not None:
            filters["export"] = str(export)
        cursor = decode_page_token(page_token, filters)
        if export is not None and cursor is None:
            await self._audit_export(principal, export, filters)
        after = cursor_after(cursor)
        records = await self._assessments.page(
            principal.organization_id,
            account_id=account,
            decision=decision,
            start=to_datetime(start_s),
            end=to_datetime(end_s),
            after=after,
            limit=size + 1,
        )
        page, token = next_page(
            records,
            size,
            lambda last: page_cursor(last.result.assessed_at_s, last.result.assessment_id),
            filters,
        )
        return Page(page, token)

    async def _audit_export(self, principal: Principal, export: uuid.UUID, filters: dict[str, Any]) -> None:
        """A read marked as an export is audited once, on its first page; the same export id with other filters is
        ``IDEMPOTENCY_KEY_REUSED``."""
        detail = {name: "" if value is None else str(value) for name, value in filters.items() if name != "export"}
        recorded = await self._assessments.audit_export(principal.organization_id, export, principal.subject, detail)
        if recorded is None:
            return
        differing = first_differing_field((name, detail[name], recorded.get(name)) for name in detail)
        if differing is not None:
            raise IdempotencyKeyReused("export_id", differing)

    async def get_features(
        self, principal: Principal, account_id: str, device_id: str, counterparty_id: str
    ) -> tuple[dict[str, FeatureValue], float]:
        violations: list[FieldViolation] = []
        parse_uuid(account_id, "account_id", violations)
        if violations:
            raise invalid(violations)
        now_s = self._clock()
        hot = await self._windows.read(principal.organization_id, account_id, device_id, counterparty_id, now_s)
        state: EntityState = hot.state
        features = window_features(state, now_s)
        features.update(history_features(state, 0, now_s))
        features.pop("account.amount_zscore")
        if not counterparty_id:
            features.pop("payee.first_payment")
        if not device_id:
            features = {name: value for name, value in features.items() if not name.startswith("device.")}
        else:
            features.update(device_features(state.device_fields, "", now_s, self._config.new_device_hours))
        return features, now_s
