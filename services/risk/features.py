"""Risk features: the catalog rules may name, and the pure arithmetic that turns window buckets and running
statistics (read from Redis by ``feature_windows.py``) into feature values. No I/O, no clock: ``now_s`` is passed in.

Windows are bucketed sliding windows: a 1 m window is the last 6 buckets of 10 s, 1 h the last 12 of 5 min, 24 h
the last 24 of 1 h — so a window reaches up to one bucket less far back than its name (resolution, documented).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.risk import limits
from services.risk.domain import AssessmentContext

FeatureValue = int | float | bool | str


class FeatureKind(enum.Enum):
    INTEGER = "integer"
    REAL = "real"
    BOOLEAN = "boolean"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    bucket_s: int
    buckets: int
    slots: int


WINDOW_1M = Window("1m", limits.WINDOW_1M_BUCKET_S, 60 // limits.WINDOW_1M_BUCKET_S, limits.WINDOW_1M_SLOTS)
WINDOW_1H = Window("1h", limits.WINDOW_1H_BUCKET_S, 3600 // limits.WINDOW_1H_BUCKET_S, limits.WINDOW_1H_SLOTS)
WINDOW_24H = Window(
    "24h", limits.WINDOW_24H_BUCKET_S, limits.DAY_S // limits.WINDOW_24H_BUCKET_S, limits.WINDOW_24H_SLOTS
)
WINDOWS = (WINDOW_1M, WINDOW_1H, WINDOW_24H)

# Ring prefixes in the per-entity Redis hashes (the Lua writer in feature_windows.py uses the same ones).
RING_OUTFLOW = "o"
RING_INFLOW = "i"
RING_DEVICE = "d"
# First-seen fields in a device hash, one per principal seen on the device: ``seen.<principal id>`` = unix s.
# No ``:`` in the name, so parse_rings skips them.
DEVICE_SEEN_FIELD_PREFIX = "seen."


def _catalog() -> dict[str, FeatureKind]:
    catalog = {
        "payment.amount_minor": FeatureKind.INTEGER,
        "payment.currency": FeatureKind.TEXT,
        "payment.channel": FeatureKind.TEXT,
        "payment.transfer_kind": FeatureKind.TEXT,
        "payment.actor_kind": FeatureKind.TEXT,
        "payment.debit_account_kind": FeatureKind.TEXT,
        "payment.credit_account_kind": FeatureKind.TEXT,
        "payment.near_threshold": FeatureKind.BOOLEAN,
        "payment.at_or_above_threshold": FeatureKind.BOOLEAN,
        "auth.acr": FeatureKind.TEXT,
        "auth.mfa": FeatureKind.BOOLEAN,
        "auth.age_s": FeatureKind.INTEGER,
        "device.present": FeatureKind.BOOLEAN,
        "device.is_new": FeatureKind.BOOLEAN,
        "device.age_hours": FeatureKind.INTEGER,
        "payee.first_payment": FeatureKind.BOOLEAN,
        "account.distinct_counterparties.24h": FeatureKind.INTEGER,
        "account.days_since_last_outflow": FeatureKind.INTEGER,
        "account.history_count": FeatureKind.INTEGER,
        "account.amount_zscore": FeatureKind.REAL,
        "account.near_threshold_count.24h": FeatureKind.INTEGER,
        "account.distinct_senders.24h": FeatureKind.INTEGER,
        "account.inflow_sum.24h": FeatureKind.INTEGER,
        "account.outflow_of_inflow_pct.24h": FeatureKind.INTEGER,
        "model.anomaly_score": FeatureKind.INTEGER,
    }
    for window in WINDOWS:
        for prefix in ("account.outflow_count", "account.outflow_sum", "device.count", "device.sum"):
            catalog[f"{prefix}.{window.name}"] = FeatureKind.INTEGER
    return catalog


FEATURE_CATALOG: Mapping[str, FeatureKind] = _catalog()


@dataclass(frozen=True, slots=True)
class Bucket:
    epoch: int
    count: int
    sum_minor: int


def ring_field(ring: str, window: Window, epoch: int) -> str:
    """The hash field of one bucket: ``<ring><bucket_s>:<slot>`` (the Lua writer builds the same names)."""
    return f"{ring}{window.bucket_s}:{epoch % window.slots}"


def parse_rings(fields: Mapping[str, str]) -> dict[str, list[Bucket]]:
    """Every ring of a hash in one pass, by ring name (``o10``, ``o300``, ``i3600``, ...); each field's value is
    ``epoch:count:sum``. Scalar fields (``n``, ``mean``) have no ``:`` in their names and are skipped."""
    rings: dict[str, list[Bucket]] = {}
    for name, value in fields.items():
        ring, separator, _ = name.partition(":")
        if not separator:
            continue
        parts = value.split(":")
        if len(parts) != 3:
            continue
        rings.setdefault(ring, []).append(Bucket(int(parts[0]), int(parts[1]), int(parts[2])))
    return rings


def parse_ring(fields: Mapping[str, str], ring: str, window: Window) -> list[Bucket]:
    """The buckets of one ring."""
    return parse_rings(fields).get(f"{ring}{window.bucket_s}", [])


def window_totals(buckets: list[Bucket], now_s: float, window: Window) -> tuple[int, int]:
    """(count, sum) of the buckets inside ``window`` ending now."""
    current = int(now_s) // window.bucket_s
    oldest = current - window.buckets
    count = 0
    total = 0
    for bucket in buckets:
        if oldest < bucket.epoch <= current:
            count += bucket.count
            total += bucket.sum_minor
    return count, total


@dataclass(frozen=True, slots=True)
class RunningStats:
    """Welford's running mean and M2 over an account's outflow amounts."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> RunningStats:
        count = self.count + 1
        delta = value - self.mean
        mean = self.mean + delta / count
        return RunningStats(count, mean, self.m2 + delta * (value - mean))

    def zscore(self, value: float) -> float:
        if self.count < limits.ZSCORE_HISTORY_MIN:
            return 0.0
        variance = self.m2 / (self.count - 1)
        if variance <= 0.0:
            return 0.0 if value == self.mean else math.copysign(99.0, value - self.mean)
        return round((value - self.mean) / math.sqrt(variance), 4)


@dataclass(frozen=True, slots=True)
class EntityState:
    """What Redis holds about the payer's account and device, as read in one round trip."""

    account_fields: Mapping[str, str] = field(default_factory=dict)
    device_fields: Mapping[str, str] = field(default_factory=dict)
    distinct_counterparties_24h: int = 0
    distinct_senders_24h: int = 0
    near_threshold_count_24h: int = 0
    payee_known: bool = False

    def running_stats(self) -> RunningStats:
        fields = self.account_fields
        return RunningStats(int(fields.get("n", "0")), float(fields.get("mean", "0")), float(fields.get("m2", "0")))

    def last_outflow_s(self) -> int | None:
        raw = self.account_fields.get("last_out_s")
        return None if raw is None else int(raw)


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    reporting_threshold_minor: int
    structuring_band_pct: int
    # A device first seen less than this long ago (or never) is new.
    new_device_hours: int = limits.NEW_DEVICE_HOURS_DEFAULT

    def is_near(self, amount_minor: int) -> bool:
        lower = self.reporting_threshold_minor * (100 - self.structuring_band_pct) // 100
        return lower <= amount_minor < self.reporting_threshold_minor


def window_features(state: EntityState, now_s: float) -> dict[str, FeatureValue]:
    features: dict[str, FeatureValue] = {}
    account = parse_rings(state.account_fields)
    device = parse_rings(state.device_fields)
    for window in WINDOWS:
        count, total = window_totals(account.get(f"{RING_OUTFLOW}{window.bucket_s}", []), now_s, window)
        features[f"account.outflow_count.{window.name}"] = count
        features[f"account.outflow_sum.{window.name}"] = total
        count, total = window_totals(device.get(f"{RING_DEVICE}{window.bucket_s}", []), now_s, window)
        features[f"device.count.{window.name}"] = count
        features[f"device.sum.{window.name}"] = total
    inflow = account.get(f"{RING_INFLOW}{WINDOW_24H.bucket_s}", [])
    _, inflow_sum = window_totals(inflow, now_s, WINDOW_24H)
    features["account.inflow_sum.24h"] = inflow_sum
    return features


def history_features(state: EntityState, amount_minor: int, now_s: float) -> dict[str, FeatureValue]:
    stats = state.running_stats()
    last_outflow_s = state.last_outflow_s()
    days_since = -1 if last_outflow_s is None else max(0, int(now_s) - last_outflow_s) // limits.DAY_S
    return {
        "account.history_count": stats.count,
        "account.amount_zscore": stats.zscore(float(amount_minor)),
        "account.days_since_last_outflow": days_since,
        "account.distinct_counterparties.24h": state.distinct_counterparties_24h,
        "account.distinct_senders.24h": state.distinct_senders_24h,
        "payee.first_payment": not state.payee_known,
    }


def device_first_seen_s(device_fields: Mapping[str, str], principal_id: str) -> int | None:
    """When the principal was first seen on the device (auth's sign-in and device events); for a call that names no
    principal, the earliest of any principal. None when never seen."""
    if principal_id:
        raw = device_fields.get(f"{DEVICE_SEEN_FIELD_PREFIX}{principal_id}")
        return None if raw is None else int(raw)
    seen = [int(value) for name, value in device_fields.items() if name.startswith(DEVICE_SEEN_FIELD_PREFIX)]
    return min(seen) if seen else None


def device_features(
    device_fields: Mapping[str, str], principal_id: str, now_s: float, new_device_hours: int
) -> dict[str, FeatureValue]:
    """``device.is_new``: never seen, or first seen less than ``new_device_hours`` ago; ``device.age_hours``: whole
    hours since first seen (-1 never). Only for a call that names a device (missing features make rules false)."""
    assert new_device_hours > 0
    first_seen_s = device_first_seen_s(device_fields, principal_id)
    if first_seen_s is None:
        return {"device.is_new": True, "device.age_hours": -1}
    age_s = max(0, int(now_s) - first_seen_s)
    return {"device.is_new": age_s < new_device_hours * 3600, "device.age_hours": age_s // 3600}


def outflow_of_inflow_pct(outflow_sum_24h: int, amount_minor: int, inflow_sum_24h: int) -> int:
    """How much of the last 24 h's inflow this payment and the earlier outflows send on, in percent (0 without
    inflow): a mule receives from many and passes it on quickly."""
    if inflow_sum_24h <= 0:
        return 0
    return (outflow_sum_24h + amount_minor) * 100 // inflow_sum_24h


def anomaly_vector(features: Mapping[str, FeatureValue]) -> dict[str, float]:
    """The model's input, every value scaled into [0, 1] (Half-Space Trees assume that range)."""

    def number(name: str) -> float:
        value = features.get(name, 0)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

    amount = max(1.0, number("payment.amount_minor"))
    return {
        "amount": min(1.0, math.log10(amount) / 12.0),
        "count_1h": min(1.0, number("account.outflow_count.1h") / 50.0),
        "counterparties": min(1.0, number("account.distinct_counterparties.24h") / 50.0),
        "zscore": min(1.0, abs(number("account.amount_zscore")) / 10.0),
        "first_payee": 1.0 if features.get("payee.first_payment") is True else 0.0,
    }


def assessment_features(
    context: AssessmentContext, state: EntityState, now_s: float, policy: ThresholdPolicy
) -> dict[str, FeatureValue]:
    """Every catalog feature for one payment (``model.anomaly_score`` is filled in by the caller)."""
    amount = context.amount_minor
    near = policy.is_near(amount)
    features: dict[str, FeatureValue] = {
        "payment.amount_minor": amount,
        "payment.currency": context.currency,
        "payment.channel": context.channel,
        "payment.transfer_kind": context.transfer_kind,
        "payment.actor_kind": context.actor_kind,
        "payment.debit_account_kind": context.debit_account_kind,
        "payment.credit_account_kind": context.credit_account_kind,
        "payment.near_threshold": near,
        "payment.at_or_above_threshold": amount >= policy.reporting_threshold_minor,
        "auth.acr": context.acr,
        "auth.mfa": context.acr == "mfa",
        "auth.age_s": -1 if context.auth_time_s is None else max(0, int(now_s) - context.auth_time_s),
        "device.present": bool(context.device_id),
        "account.near_threshold_count.24h": state.near_threshold_count_24h + (1 if near else 0),
    }
    features.update(window_features(state, now_s))
    features.update(history_features(state, amount, now_s))
    if context.device_id:
        features.update(device_features(state.device_fields, context.principal_id, now_s, policy.new_device_hours))
    inflow = features["account.inflow_sum.24h"]
    outflow = features["account.outflow_sum.24h"]
    assert isinstance(inflow, int)
    assert isinstance(outflow, int)
    features["account.outflow_of_inflow_pct.24h"] = outflow_of_inflow_pct(outflow, amount, inflow)
    features["model.anomaly_score"] = 0
    return features
