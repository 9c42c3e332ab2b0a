"""Risk's own settings, read once at start through the kit's ``Env`` (defaults documented in README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.config import Env, default_addr


@dataclass(frozen=True, slots=True)
class RiskConfig:
    # Reporting threshold in minor units: transfers at or above it get a large-transaction AML report.
    reporting_threshold_minor: int = 1_000_000
    # "Just below the threshold": within this percentage under it.
    structuring_band_pct: int = 10
    # This many near-threshold outflows in 24 h are suspected structuring.
    structuring_count_min: int = 3
    # Where the ledger listens (ResolveTransferReview for resolved cases).
    ledger_addr: str = default_addr("ledger")
    # Stream of ledger events the feature windows learn from.
    ledger_events_stream: str = "wallet.ledger.v1.events"
    consumer_group: str = "risk-features"


def load_risk_config(env: Env) -> RiskConfig:
    defaults = RiskConfig()
    return RiskConfig(
        reporting_threshold_minor=env.integer(
            "RISK_REPORTING_THRESHOLD_MINOR", defaults.reporting_threshold_minor, min_value=1
        ),
        structuring_band_pct=env.integer(
            "RISK_STRUCTURING_BAND_PCT", defaults.structuring_band_pct, min_value=1, max_value=50
        ),
        structuring_count_min=env.integer(
            "RISK_STRUCTURING_COUNT_MIN", defaults.structuring_count_min, min_value=2, max_value=100
        ),
        ledger_addr=env.string("LEDGER_ADDR", defaults.ledger_addr),
        ledger_events_stream=env.string("RISK_LEDGER_EVENTS_STREAM", defaults.ledger_events_stream),
        consumer_group=env.string("RISK_CONSUMER_GROUP", defaults.consumer_group),
    )
