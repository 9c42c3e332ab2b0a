"""Window arithmetic, running statistics and derived features."""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.domain import AssessmentContext
from services.risk.features import (
    FEATURE_CATALOG,
    WINDOW_1H,
    WINDOW_1M,
    WINDOW_24H,
    Bucket,
    EntityState,
    RunningStats,
    ThresholdPolicy,
    assessment_features,
    device_features,
    device_first_seen_s,
    outflow_of_inflow_pct,
    parse_ring,
    ring_field,
    window_totals,
)

NOW_S = 1_800_000_000.0


# No deadline: a busy shared CI machine must not turn a slow example into a failure.
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=200_000), st.integers(min_value=1, max_value=10**6)), max_size=50
    )
)
def test_window_totals_count_exactly_the_buckets_inside_the_window(events: list[tuple[int, int]]) -> None:
    for window in (WINDOW_1M, WINDOW_1H, WINDOW_24H):
        by_epoch: dict[int, Bucket] = {}
        for age_s, amount in events:
            epoch = int(NOW_S - age_s) // window.bucket_s
            old = by_epoch.get(epoch, Bucket(epoch, 0, 0))
            by_epoch[epoch] = Bucket(epoch, old.count + 1, old.sum_minor + amount)
        count, total = window_totals(list(by_epoch.values()), NOW_S, window)
        current = int(NOW_S) // window.bucket_s
        inside = [(a, m) for a, m in events if current - window.buckets < int(NOW_S - a) // window.bucket_s]
        assert count == len(inside)
        assert total == sum(m for _, m in inside)
        # A window reaches back at most its nominal length (and at least one bucket less).
        assert all(a < window.bucket_s * window.buckets + window.bucket_s for a, _ in inside)


def test_ring_fields_round_trip() -> None:
    epoch = int(NOW_S) // WINDOW_1H.bucket_s
    fields = {ring_field("o", WINDOW_1H, epoch): f"{epoch}:3:300", ring_field("o", WINDOW_1M, 5): "5:1:1", "n": "2"}
    assert parse_ring(fields, "o", WINDOW_1H) == [Bucket(epoch, 3, 300)]


# No deadline: a busy shared CI machine must not turn a slow example into a failure.
@settings(deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=2, max_size=60))
def test_running_stats_match_the_textbook(values: list[int]) -> None:
    stats = RunningStats()
    for value in values:
        stats = stats.add(float(value))
    assert stats.count == len(values)
    assert math.isclose(stats.mean, statistics.fmean(values), rel_tol=1e-9)
    assert math.isclose(stats.m2 / (stats.count - 1), statistics.variance(values), rel_tol=1e-6, abs_tol=1e-3)


def test_zscore_needs_history() -> None:
    stats = RunningStats()
    for value in (100.0, 110.0, 90.0, 105.0):
        stats = stats.add(value)
    assert stats.zscore(10_000.0) == 0.0
    stats = stats.add(95.0)
    assert stats.zscore(10_000.0) > 100
    flat = RunningStats(10, 50.0, 0.0)
    assert flat.zscore(50.0) == 0.0
    assert flat.zscore(51.0) == 99.0


def test_near_threshold_band_boundaries() -> None:
    policy = ThresholdPolicy(reporting_threshold_minor=1_000_000, structuring_band_pct=10)
    assert not policy.is_near(899_999)
    assert policy.is_near(900_000)
    assert policy.is_near(999_999)
    assert not policy.is_near(1_000_000)


def test_outflow_of_inflow() -> None:
    assert outflow_of_inflow_pct(0, 100, 0) == 0
    assert outflow_of_inflow_pct(400, 500, 1000) == 90


def test_assessment_features_cover_the_catalog() -> None:
    context = AssessmentContext("a", "b", 950_000, "EUR", acr="mfa", auth_time_s=int(NOW_S) - 30, device_id="d")
    state = EntityState(
        near_threshold_count_24h=2, payee_known=True, account_fields={"last_out_s": str(int(NOW_S) - 100 * 86_400)}
    )
    features = assessment_features(context, state, NOW_S, ThresholdPolicy(1_000_000, 10))
    assert set(features) == set(FEATURE_CATALOG)
    assert features["account.near_threshold_count.24h"] == 3
    assert features["auth.age_s"] == 30
    assert features["auth.mfa"] is True
    assert features["account.days_since_last_outflow"] == 100
    assert features["payee.first_payment"] is False


HOUR_S = 3600


def test_a_device_never_seen_is_new_with_no_age() -> None:
    assert device_features({}, "p1", NOW_S, 24) == {"device.is_new": True, "device.age_hours": -1}
    # Seen only with another principal: new for this one.
    other = {"seen.p2": str(int(NOW_S) - 1000 * HOUR_S)}
    assert device_features(other, "p1", NOW_S, 24) == {"device.is_new": True, "device.age_hours": -1}


def test_a_device_is_new_until_the_window_has_passed() -> None:
    def at_age(age_s: int) -> dict[str, object]:
        fields = {"seen.p1": str(int(NOW_S) - age_s), "d10:1": "1:1:1"}  # ring fields are ignored
        return dict(device_features(fields, "p1", NOW_S, 24))

    assert at_age(0) == {"device.is_new": True, "device.age_hours": 0}
    assert at_age(24 * HOUR_S - 1) == {"device.is_new": True, "device.age_hours": 23}
    assert at_age(24 * HOUR_S) == {"device.is_new": False, "device.age_hours": 24}
    assert at_age(400 * 24 * HOUR_S) == {"device.is_new": False, "device.age_hours": 9600}
    # A first-seen time in the future (clock skew between replicas) is age 0, not negative.
    assert at_age(-500) == {"device.is_new": True, "device.age_hours": 0}


def test_without_a_principal_the_earliest_sighting_counts() -> None:
    fields = {"seen.p1": str(int(NOW_S) - 2 * HOUR_S), "seen.p2": str(int(NOW_S) - 50 * HOUR_S), "n": "3"}
    assert device_first_seen_s(fields, "") == int(NOW_S) - 50 * HOUR_S
    assert device_first_seen_s(fields, "p1") == int(NOW_S) - 2 * HOUR_S
    assert device_features(fields, "", NOW_S, 24) == {"device.is_new": False, "device.age_hours": 50}


def test_device_features_only_when_the_payment_names_a_device() -> None:
    policy = ThresholdPolicy(1_000_000, 10, new_device_hours=48)
    seen = EntityState(device_fields={"seen.p1": str(int(NOW_S) - 30 * HOUR_S)})
    with_device = AssessmentContext("a", "b", 100, "EUR", device_id="d", principal_id="p1")
    features = assessment_features(with_device, seen, NOW_S, policy)
    assert (features["device.is_new"], features["device.age_hours"]) == (True, 30)
    without_device = AssessmentContext("a", "b", 100, "EUR", principal_id="p1")
    features = assessment_features(without_device, EntityState(), NOW_S, policy)
    assert "device.is_new" not in features
    assert "device.age_hours" not in features
