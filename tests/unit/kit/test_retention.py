"""The retention policy's parsing and bounds, the pure cut-offs, and the bounded purge loop (with fake purges and an
injected clock and sleep: nothing here waits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.kit.config import ConfigError, Env
from services.kit.retention import (
    PURGE_BATCH_ROWS_MAX,
    RETENTION_DAYS_MAX,
    PurgeTarget,
    RecordRetention,
    RetentionJob,
    RetentionPolicy,
    load_retention_policy,
    plan_sweep,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
AUDIT = RecordRetention("svc_audit_events", default_days=2555, min_days=1825, max_days=7300)
SESSIONS = RecordRetention("svc_sessions", default_days=90, min_days=7, max_days=3650)


def test_setting_name_derives_from_the_record_type() -> None:
    assert AUDIT.setting == "RETENTION_SVC_AUDIT_EVENTS_DAYS"


def test_defaults_apply_when_nothing_is_set() -> None:
    policy = load_retention_policy(Env({}), [AUDIT, SESSIONS])
    assert policy.days("svc_audit_events") == 2555
    assert policy.days("svc_sessions") == 90


def test_a_setting_within_bounds_is_used_including_both_bounds() -> None:
    for days in (1825, 3000, 7300):
        policy = load_retention_policy(Env({"RETENTION_SVC_AUDIT_EVENTS_DAYS": str(days)}), [AUDIT])
        assert policy.days("svc_audit_events") == days


@pytest.mark.parametrize("value", ["0", "1824", "7301", "-5"])
def test_a_setting_out_of_bounds_stops_start_with_one_line_naming_it(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_retention_policy(Env({"RETENTION_SVC_AUDIT_EVENTS_DAYS": value}), [AUDIT, SESSIONS])
    message = str(raised.value)
    assert "RETENTION_SVC_AUDIT_EVENTS_DAYS" in message
    assert "between 1825 and 7300" in message
    assert "\n" not in message


def test_a_malformed_setting_names_it() -> None:
    with pytest.raises(ConfigError, match="RETENTION_SVC_SESSIONS_DAYS must be an integer"):
        load_retention_policy(Env({"RETENTION_SVC_SESSIONS_DAYS": "ninety"}), [SESSIONS])


def test_record_types_with_inconsistent_bounds_are_programmer_errors() -> None:
    with pytest.raises(AssertionError):
        RecordRetention("svc_x", default_days=5, min_days=10, max_days=20)
    with pytest.raises(AssertionError):
        RecordRetention("svc_x", default_days=30, min_days=10, max_days=20)
    with pytest.raises(AssertionError):
        RecordRetention("svc_x", default_days=0, min_days=0, max_days=20)
    with pytest.raises(AssertionError):
        RecordRetention("svc_x", default_days=1, min_days=1, max_days=RETENTION_DAYS_MAX + 1)
    with pytest.raises(AssertionError):
        RecordRetention("NoService", default_days=1, min_days=1, max_days=2)
    with pytest.raises(AssertionError):
        load_retention_policy(Env({}), [SESSIONS, SESSIONS])


def test_cutoff_is_now_minus_the_configured_days() -> None:
    policy = RetentionPolicy({"svc_sessions": 90})
    assert policy.cutoff("svc_sessions", NOW) == NOW - timedelta(days=90)


def test_cutoff_refuses_a_naive_clock() -> None:
    with pytest.raises(AssertionError):
        RetentionPolicy({"svc_sessions": 90}).cutoff("svc_sessions", NOW.replace(tzinfo=None))


async def _no_rows(cutoff: datetime, limit: int) -> int:
    return 0


def test_plan_gives_per_row_targets_now_and_the_others_their_cutoff() -> None:
    policy = RetentionPolicy({"svc_sessions": 90, "svc_audit_events": 2555})
    targets = [
        PurgeTarget("svc_sessions", _no_rows),
        PurgeTarget("svc_contacts", _no_rows, per_row=True),
        PurgeTarget("svc_audit_events", _no_rows),
    ]
    plan = plan_sweep(policy, targets, NOW)
    assert plan.cutoffs == (NOW - timedelta(days=90), NOW, NOW - timedelta(days=2555))


class FakeTable:
    """Rows (their retention start times) a fake purge deletes oldest first, at most ``limit`` per call."""

    def __init__(self, ages_days: list[int]) -> None:
        self.rows = sorted(NOW - timedelta(days=age) for age in ages_days)
        self.calls: list[tuple[datetime, int]] = []

    async def purge(self, cutoff: datetime, limit: int) -> int:
        self.calls.append((cutoff, limit))
        due = [row for row in self.rows if row < cutoff][:limit]
        for row in due:
            self.rows.remove(row)
        return len(due)


class RecordingSleep:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def _job(table: FakeTable, *, batch_rows: int, rounds_max: int, sleep: RecordingSleep) -> RetentionJob:
    return RetentionJob(
        "svc",
        RetentionPolicy({"svc_sessions": 90}),
        [PurgeTarget("svc_sessions", table.purge)],
        clock=lambda: NOW,
        batch_rows=batch_rows,
        rounds_max=rounds_max,
        round_pause_s=0.25,
        sleep=sleep,
    )


async def test_a_sweep_purges_in_bounded_rounds_with_a_pause_between_them() -> None:
    table = FakeTable([100, 200, 300, 400, 500, 10, 89])
    sleep = RecordingSleep()
    purged = await _job(table, batch_rows=2, rounds_max=10, sleep=sleep).sweep_once()
    assert purged == {"svc_sessions": 5}
    # Rounds of 2, 2, 1: the short round ends the record type's sweep.
    assert [limit for _, limit in table.calls] == [2, 2, 2]
    assert sleep.pauses == [0.25, 0.25]
    assert sorted((NOW - row).days for row in table.rows) == [10, 89]


async def test_a_backlog_stops_at_the_round_limit_and_continues_next_sweep() -> None:
    table = FakeTable([100, 200, 300, 400, 500])
    job = _job(table, batch_rows=2, rounds_max=1, sleep=RecordingSleep())
    assert await job.sweep_once() == {"svc_sessions": 2}
    assert await job.sweep_once() == {"svc_sessions": 2}
    assert await job.sweep_once() == {"svc_sessions": 1}
    # Idempotent: nothing is left past retention, so a further sweep purges nothing.
    assert await job.sweep_once() == {"svc_sessions": 0}
    assert table.rows == []


async def test_rows_of_one_record_type_across_targets_are_added_up() -> None:
    first, second = FakeTable([100, 200]), FakeTable([300])
    job = RetentionJob(
        "svc",
        RetentionPolicy({"svc_sessions": 90}),
        [PurgeTarget("svc_sessions", first.purge), PurgeTarget("svc_sessions", second.purge)],
        clock=lambda: NOW,
        sleep=RecordingSleep(),
    )
    assert await job.sweep_once() == {"svc_sessions": 3}


async def test_a_failing_target_does_not_stop_the_others_in_the_background_job() -> None:
    async def broken(cutoff: datetime, limit: int) -> int:
        raise asyncpg.PostgresConnectionError("gone")

    table = FakeTable([100])
    job = RetentionJob(
        "svc",
        RetentionPolicy({"svc_sessions": 90, "svc_audit_events": 2555}),
        [PurgeTarget("svc_audit_events", broken), PurgeTarget("svc_sessions", table.purge)],
        clock=lambda: NOW,
        sleep=RecordingSleep(),
    )
    assert await job.sweep_once(keep_going=True) == {"svc_audit_events": 0, "svc_sessions": 1}
    with pytest.raises(asyncpg.PostgresConnectionError):
        await job.sweep_once()


async def test_a_purge_returning_more_than_its_limit_is_a_bug() -> None:
    async def greedy(cutoff: datetime, limit: int) -> int:
        return limit + 1

    job = RetentionJob(
        "svc", RetentionPolicy({"svc_sessions": 90}), [PurgeTarget("svc_sessions", greedy)], clock=lambda: NOW
    )
    with pytest.raises(AssertionError):
        await job.sweep_once()


def test_job_bounds_and_undeclared_record_types_are_programmer_errors() -> None:
    policy = RetentionPolicy({"svc_sessions": 90})
    with pytest.raises(AssertionError):
        RetentionJob("svc", policy, [], clock=lambda: NOW, batch_rows=PURGE_BATCH_ROWS_MAX + 1)
    with pytest.raises(AssertionError):
        RetentionJob("svc", policy, [PurgeTarget("svc_unknown", _no_rows)], clock=lambda: NOW)
