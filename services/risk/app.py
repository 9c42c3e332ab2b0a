"""Wiring of one risk process: stores, services, the recorder, the event consumers, the complaint jobs and the
ledger and contacts clients, built from the kit's Runtime (whose pool and Redis connect after start, so stores reach
them through the Runtime)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.kit.grpc_server import Runtime
from services.kit.service_main import BackgroundJob
from services.kit.stream_consumer import StreamConsumer
from services.risk.anomaly import AnomalyModels
from services.risk.config import RiskConfig
from services.risk.consumer import LedgerEventConsumer
from services.risk.device_consumer import device_consumer
from services.risk.feature_windows import FeatureWindows
from services.risk.limits import CONSUMER_CLAIM_IDLE_MS
from services.risk.recorder import AssessmentRecorder
from services.risk.retention import risk_retention_job
from services.risk.service import Clock, RiskService
from services.risk.service_cases import CaseService, LedgerReviews
from services.risk.service_complaint_events import ComplaintEvents
from services.risk.service_complaints import (
    ComplaintJobs,
    ComplaintLedger,
    ComplaintNotifier,
    ComplaintService,
    UnconfiguredLedger,
    UnconfiguredNotifier,
)
from services.risk.service_rules import RulesAndListsService
from services.risk.store import ListStore, RuleStore
from services.risk.store_assessments import AssessmentStore
from services.risk.store_cases import AmlReportStore, CaseStore
from services.risk.store_complaints import ComplaintStore


@dataclass
class RiskApp:
    runtime: Runtime
    config: RiskConfig
    ledger: LedgerReviews
    models: AnomalyModels = field(default_factory=AnomalyModels)
    # Complaints' ports (disputed transfers and refunds in the ledger, notifications through the vault); without a
    # platform client they answer UNAVAILABLE (complaints that touch no transfer still work).
    complaint_ledger: ComplaintLedger = field(default_factory=UnconfiguredLedger)
    notifier: ComplaintNotifier = field(default_factory=UnconfiguredNotifier)
    clock: Clock = time.time

    def __post_init__(self) -> None:
        runtime = self.runtime
        windows = self.windows = FeatureWindows(lambda: runtime.redis)
        assessments = AssessmentStore(lambda: runtime.pool)
        rules = RuleStore(lambda: runtime.pool)
        lists = ListStore(lambda: runtime.pool)
        cases = CaseStore(lambda: runtime.pool)
        reports = AmlReportStore(lambda: runtime.pool)
        self.recorder = AssessmentRecorder(assessments)
        self.risk = RiskService(
            self.config,
            windows=windows,
            rules=rules,
            lists=lists,
            assessments=assessments,
            recorder=self.recorder,
            cases=cases,
            models=self.models,
        )
        self.rules_and_lists = RulesAndListsService(
            windows=windows, rules=rules, lists=lists, assessments=assessments
        )
        self.cases = CaseService(
            self.config, cases=cases, reports=reports, ledger=self.ledger, windows=windows, models=self.models
        )
        complaints = ComplaintStore(lambda: runtime.pool)
        self.complaints = ComplaintService(
            self.config, complaints=complaints, ledger=self.complaint_ledger, notifier=self.notifier, clock=self.clock
        )
        self.complaint_jobs = ComplaintJobs(complaints, self.notifier, self.clock)
        self.complaint_events = ComplaintEvents(complaints)

    def consumer(self, *, claim_idle_ms: int = CONSUMER_CLAIM_IDLE_MS) -> LedgerEventConsumer:
        return LedgerEventConsumer(self.config, self.runtime.redis, self.cases, claim_idle_ms=claim_idle_ms)

    def device_consumer(self, *, claim_idle_ms: int = CONSUMER_CLAIM_IDLE_MS) -> StreamConsumer:
        return device_consumer(
            self.runtime.redis,
            self.windows,
            stream=self.config.auth_events_stream,
            group=self.config.device_consumer_group,
            claim_idle_ms=claim_idle_ms,
        )

    def background_jobs(self) -> Sequence[BackgroundJob]:
        retention = risk_retention_job(lambda: self.runtime.pool, self.config.retention, lambda: datetime.now(UTC))
        return [
            self.recorder.run(),
            self.consumer().run(),
            self.device_consumer().run(),
            retention.run(),
            self.complaint_jobs.run(),
        ]
