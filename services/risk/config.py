"""Risk's own settings, read once at start through the kit's ``Env`` (defaults documented in README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.kit.config import ConfigError, Env, default_addr
from services.kit.retention import RetentionPolicy
from services.risk import limits
from services.risk.domain_complaints import DEFAULT_SLA, ComplaintCategory, SlaPolicy, sla_policies
from services.risk.retention import load_risk_retention


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
    # Stream of auth events (sign-ins, new devices, device registrations): the devices' first-seen times.
    auth_events_stream: str = "wallet.auth.v1.events"
    device_consumer_group: str = "risk-devices"
    # A device first seen less than this many hours ago (or never) has `device.is_new`.
    new_device_hours: int = limits.NEW_DEVICE_HOURS_DEFAULT
    # How long each record type is kept (services/risk/retention.py, docs/retention.md).
    retention: RetentionPolicy = field(default_factory=lambda: load_risk_retention(Env({})))
    # Where the contacts vault listens (SendNotification: complaint updates to the customer).
    contacts_addr: str = default_addr("contacts")
    # Business days to acknowledge and to resolve a complaint, per category (RISK_COMPLAINT_SLA_<CATEGORY>=ack,resolve).
    complaint_sla: Mapping[ComplaintCategory, SlaPolicy] = field(default_factory=lambda: sla_policies({}))


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
        auth_events_stream=env.string("RISK_AUTH_EVENTS_STREAM", defaults.auth_events_stream),
        device_consumer_group=env.string("RISK_DEVICE_CONSUMER_GROUP", defaults.device_consumer_group),
        new_device_hours=env.integer(
            "RISK_NEW_DEVICE_HOURS", defaults.new_device_hours, min_value=1, max_value=limits.NEW_DEVICE_HOURS_MAX
        ),
        retention=load_risk_retention(env),
        contacts_addr=env.string("CONTACTS_ADDR", defaults.contacts_addr),
        complaint_sla=sla_policies(
            {
                category: _sla_policy(name, raw)
                for category in ComplaintCategory
                if (raw := env.optional_string(name := f"RISK_COMPLAINT_SLA_{category.name}")) is not None
            }
        ),
    )


def _sla_policy(name: str, raw: str) -> SlaPolicy:
    """``"1,15"``: acknowledge within 1 business day, resolve within 15."""
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ConfigError(
            f"{name} must be '<acknowledge days>,<resolve days>', e.g. '{DEFAULT_SLA.acknowledge_business_days},{DEFAULT_SLA.resolve_business_days}'"
        )
    acknowledge, resolve = int(parts[0]), int(parts[1])
    if not 0 < acknowledge <= resolve <= limits.COMPLAINT_SLA_DAYS_MAX:
        raise ConfigError(f"{name}: need 0 < acknowledge days <= resolve days <= {limits.COMPLAINT_SLA_DAYS_MAX}")
    return SlaPolicy(acknowledge, resolve)
