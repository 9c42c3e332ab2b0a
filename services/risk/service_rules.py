"""Use cases for rule sets (publish, read, versions, rollback, backtest) and block/allow lists.

Publishing or changing a list writes Postgres first, then moves the version key in Redis; every replica's Assess
reads that key in its one round trip and reloads when it moved (see ``service.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.kit.paging import decode_page_token, next_page, page_size
from services.kit.tokens import Principal
from services.risk import limits
from services.risk.domain import (
    AssessmentRecord,
    Decision,
    ListEntryType,
    ListKind,
    RuleFormat,
    RuleVersion,
    RuleVersionNotFound,
    rules_checksum,
    validate_publish,
)
from services.risk.domain_lists import ListEntry, validate_list_entry
from services.risk.feature_windows import lists_version_key, rules_version_key
from services.risk.rules import CompiledRuleSet, RuleOutcome, compile_document
from services.risk.service import (
    Assessments,
    Clock,
    Lists,
    Page,
    Rules,
    Windows,
    cursor_after,
    default_rule_version,
    page_cursor,
)


@dataclass(frozen=True, slots=True)
class DecisionChange:
    record: AssessmentRecord
    draft: RuleOutcome


@dataclass(frozen=True, slots=True)
class DryRunReport:
    replayed: int
    recorded_counts: Mapping[Decision, int]
    draft_counts: Mapping[Decision, int]
    flipped_total: int
    flipped: tuple[DecisionChange, ...]
    # (recorded, draft) -> how many, for the pairs that differ.
    changes: Mapping[tuple[Decision, Decision], int]


@dataclass(frozen=True, slots=True)
class PublishedRules:
    rule_set: RuleVersion
    active_version: int


def replay(draft: CompiledRuleSet, record: AssessmentRecord) -> RuleOutcome:
    """The draft's answer for a recorded assessment. List hits decided before any rule, so they stay as recorded."""
    if record.list_outcome:
        result = record.result
        return RuleOutcome(result.decision, result.score, result.reason_codes)
    features = dict(record.features)
    features["model.anomaly_score"] = record.result.anomaly_score if draft.anomaly_active else 0
    return draft.evaluate(features)


class RulesAndListsService:
    def __init__(
        self, *, windows: Windows, rules: Rules, lists: Lists, assessments: Assessments, clock: Clock = time.time
    ) -> None:
        self._windows = windows
        self._rules = rules
        self._lists = lists
        self._assessments = assessments
        self._clock = clock
        self._default = default_rule_version()

    # --- rules ---

    async def publish_rules(
        self,
        principal: Principal,
        *,
        document: str,
        rule_format: RuleFormat | None,
        expected_active_version: int,
        comment: str,
        request_id: str,
    ) -> PublishedRules:
        validate_publish(expected_active_version, comment, request_id)
        if rule_format is None:
            raise invalid([FieldViolation("format", "is required")])
        org = principal.organization_id
        checksum = rules_checksum(document)
        earlier = await self._rules.find_by_request(org, request_id)
        if earlier is not None:
            if earlier.checksum != checksum or earlier.copied_from_version != 0:
                raise IdempotencyKeyReused("request_id", "document")
            return PublishedRules(earlier, await self._rules.active_version_number(org))
        compile_document(document, rule_format)  # raises RULES_INVALID naming every problem; nothing is written
        version = RuleVersion(0, document, rule_format, checksum, comment, 0, principal.subject, 0.0, request_id)
        return await self._publish(org, expected_active_version, version)

    async def _publish(self, org: str, expected_active_version: int, version: RuleVersion) -> PublishedRules:
        stored = await self._rules.publish(org, expected_active_version, version)
        await self._windows.publish_version(rules_version_key(org), stored.version)
        return PublishedRules(stored, stored.version)

    async def rollback_rules(
        self,
        principal: Principal,
        *,
        target_version: int,
        expected_active_version: int,
        comment: str,
        request_id: str,
    ) -> PublishedRules:
        validate_publish(expected_active_version, comment, request_id)
        if target_version <= 0:
            raise invalid([FieldViolation("target_version", "must be a published version (1 or more)")])
        org = principal.organization_id
        earlier = await self._rules.find_by_request(org, request_id)
        if earlier is not None:
            if earlier.copied_from_version != target_version:
                raise IdempotencyKeyReused("request_id", "target_version")
            return PublishedRules(earlier, await self._rules.active_version_number(org))
        target = await self._rules.get(org, target_version)
        if target is None:
            raise RuleVersionNotFound(f"rules version {target_version} not found")
        copy = RuleVersion(
            0,
            target.document,
            target.format,
            target.checksum,
            comment,
            target_version,
            principal.subject,
            0.0,
            request_id,
        )
        return await self._publish(org, expected_active_version, copy)

    async def get_rules(self, principal: Principal, version: int) -> PublishedRules:
        if version < 0:
            raise invalid([FieldViolation("version", "must be 0 (active) or a version number")])
        org = principal.organization_id
        active = await self._rules.active_version_number(org)
        wanted = active if version == 0 else version
        if wanted == 0:
            return PublishedRules(self._default, 0)
        stored = await self._rules.get(org, wanted)
        if stored is None:
            raise RuleVersionNotFound(f"rules version {wanted} not found")
        return PublishedRules(stored, active)

    async def list_rule_versions(
        self, principal: Principal, page_size_requested: int, page_token: str
    ) -> tuple[Page, int]:
        size = page_size(page_size_requested)
        cursor = decode_page_token(page_token, {})
        org = principal.organization_id
        before = None if cursor is None else int(cursor["v"])
        versions = await self._rules.list_versions(org, before, size + 1)
        page, token = next_page(versions, size, lambda last: {"v": last.version}, {})
        return Page(page, token), await self._rules.active_version_number(org)

    async def dry_run(
        self,
        principal: Principal,
        *,
        document: str,
        rule_format: RuleFormat | None,
        start_s: float | None,
        end_s: float | None,
        max_assessments: int,
    ) -> DryRunReport:
        violations: list[FieldViolation] = []
        if rule_format is None:
            violations.append(FieldViolation("format", "is required"))
        if start_s is None:
            violations.append(FieldViolation("start_time", "is required"))
        if end_s is None:
            violations.append(FieldViolation("end_time", "is required"))
        elif start_s is not None and end_s <= start_s:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        if not 0 <= max_assessments <= limits.DRY_RUN_ASSESSMENTS_MAX:
            violations.append(FieldViolation("max_assessments", f"must be 0 to {limits.DRY_RUN_ASSESSMENTS_MAX}"))
        if violations:
            raise invalid(violations)
        assert rule_format is not None
        assert start_s is not None
        assert end_s is not None
        draft = compile_document(document, rule_format)
        budget = max_assessments or limits.DRY_RUN_ASSESSMENTS_MAX
        start = datetime.fromtimestamp(start_s, UTC)
        end = datetime.fromtimestamp(end_s, UTC)
        recorded: Counter[Decision] = Counter()
        drafted: Counter[Decision] = Counter()
        flipped: list[DecisionChange] = []
        changes: Counter[tuple[Decision, Decision]] = Counter()
        flipped_total = 0
        replayed = 0
        after = None
        while replayed < budget:
            records = await self._assessments.replay_page(
                principal.organization_id, start, end, after, min(limits.DRY_RUN_PAGE_ROWS, budget - replayed)
            )
            if not records:
                break
            for record in records:
                outcome = replay(draft, record)
                recorded[record.result.decision] += 1
                drafted[outcome.decision] += 1
                if outcome.decision is not record.result.decision:
                    flipped_total += 1
                    changes[(record.result.decision, outcome.decision)] += 1
                    if len(flipped) < limits.DRY_RUN_FLIPPED_SHOWN_MAX:
                        flipped.append(DecisionChange(record, outcome))
            replayed += len(records)
            last = records[-1].result
            after = cursor_after(page_cursor(last.assessed_at_s, last.assessment_id))
            await asyncio.sleep(0)  # let Assess calls run between pages
        return DryRunReport(replayed, dict(recorded), dict(drafted), flipped_total, tuple(flipped), dict(changes))

    # --- lists ---

    async def add_list_entry(self, principal: Principal, entry: ListEntry) -> ListEntry:
        entry = validate_list_entry(entry, self._clock())
        org = principal.organization_id
        entry = ListEntry(
            entry.list_entry_id,
            entry.list_kind,
            entry.entry_type,
            entry.value,
            entry.reason,
            entry.expires_at_s,
            principal.subject,
        )
        stored, created = await self._lists.add(org, entry)
        if not created:
            differing = entry.same_content(stored)
            if differing is not None:
                raise IdempotencyKeyReused("list_entry_id", differing)
            return stored
        await self._windows.touch_version(lists_version_key(org))
        return stored

    async def remove_list_entry(self, principal: Principal, list_entry_id: str, request_id: str) -> ListEntry:
        violations: list[FieldViolation] = []
        parse_uuid(list_entry_id, "list_entry_id", violations)
        parse_uuid(request_id, "request_id", violations)
        if violations:
            raise invalid(violations)
        org = principal.organization_id
        removed = await self._lists.remove(org, list_entry_id, request_id, principal.subject)
        await self._windows.touch_version(lists_version_key(org))
        return removed

    async def list_list_entries(
        self,
        principal: Principal,
        *,
        page_size_requested: int,
        page_token: str,
        list_kind: ListKind | None,
        entry_type: ListEntryType | None,
        value: str,
        include_inactive: bool,
    ) -> Page:
        size = page_size(page_size_requested)
        filters = {
            "kind": list_kind and list_kind.value,
            "type": entry_type and entry_type.value,
            "value": value,
            "inactive": include_inactive,
        }
        after = cursor_after(decode_page_token(page_token, filters))
        entries = await self._lists.page(
            principal.organization_id,
            list_kind=list_kind,
            entry_type=entry_type,
            value=value,
            include_inactive=include_inactive,
            after=after,
            limit=size + 1,
        )
        page, token = next_page(
            entries, size, lambda last: page_cursor(last.created_at_s, last.list_entry_id), filters
        )
        return Page(page, token)
