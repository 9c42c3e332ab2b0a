"""Auth's pure rules: brute-force counters, refresh rotation, policy updates, validation, password rules, TOTP."""

from __future__ import annotations

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.auth import domain, totp
from services.auth.domain import FailureCounter, OrganizationPolicy, RefreshOutcome, Thresholds
from services.auth.passwords import common_passwords, password_problems
from services.kit.errors import FieldViolation, InvalidArgument

THRESHOLDS = Thresholds(delay_from_failures=5, lock_at_failures=10, lock_s=900)


def test_no_delay_below_five_failures() -> None:
    counter = FailureCounter()
    for _ in range(4):
        counter = domain.after_failure(counter, 1000.0, THRESHOLDS)
        assert domain.refusal_s(counter, 1000.0) is None
    assert counter.failures == 4


def test_delays_double_from_five_and_lock_at_ten() -> None:
    counter, now_s, delays = FailureCounter(), 1000.0, []
    for _ in range(9):
        counter = domain.after_failure(counter, now_s, THRESHOLDS)
        delays.append(domain.refusal_s(counter, now_s))
        now_s += 100
    assert delays[4:] == [1.0, 2.0, 4.0, 8.0, 16.0]
    before = counter
    counter = domain.after_failure(counter, now_s, THRESHOLDS)
    assert counter.locked_until == now_s + 900
    assert domain.just_locked(before, counter, now_s)
    assert domain.refusal_s(counter, now_s + 899) == pytest.approx(1)
    assert domain.refusal_s(counter, now_s + 900) is None


def test_a_failure_after_an_expired_lock_starts_counting_again() -> None:
    locked = FailureCounter(failures=10, locked_until=500.0)
    assert domain.after_failure(locked, 600.0, THRESHOLDS) == FailureCounter(1, None, None)


@given(st.integers(min_value=0, max_value=40), st.floats(min_value=0, max_value=1e9))
def test_refusal_never_exceeds_the_lock(failures: int, now_s: float) -> None:
    counter = FailureCounter()
    for _ in range(failures):
        counter = domain.after_failure(counter, now_s, THRESHOLDS)
    wait = domain.refusal_s(counter, now_s)
    assert wait is None or 0 < wait <= THRESHOLDS.lock_s + 1e-6
    assert (counter.locked_until is not None) == (failures >= 10)


def test_refresh_outcomes() -> None:
    assert domain.refresh_outcome(None, False, 100.0, 30) == RefreshOutcome.ROTATE
    assert domain.refresh_outcome(90.0, False, 100.0, 30) == RefreshOutcome.SAME_SUCCESSOR
    assert domain.refresh_outcome(90.0, True, 100.0, 30) == RefreshOutcome.REUSED
    assert domain.refresh_outcome(60.0, False, 100.0, 30) == RefreshOutcome.REUSED
    assert domain.refresh_outcome(70.0, False, 100.0, 30) == RefreshOutcome.SAME_SUCCESSOR


def test_policy_update_changes_only_masked_fields() -> None:
    current = OrganizationPolicy()
    wanted = OrganizationPolicy(mfa_required=True, password_min_length=20)
    updated = domain.apply_policy_update(current, wanted, ["mfa_required"], 5.0)
    assert updated.mfa_required
    assert updated.password_min_length == current.password_min_length
    assert updated.updated_at == 5.0


def test_policy_update_reports_every_bad_field() -> None:
    wanted = OrganizationPolicy(password_min_length=8, session_max_lifetime_s=10, session_idle_timeout_s=1)
    with pytest.raises(InvalidArgument) as raised:
        domain.apply_policy_update(
            OrganizationPolicy(),
            wanted,
            ["password_min_length", "session_max_lifetime", "session_idle_timeout", "colour"],
            0.0,
        )
    fields = {violation.field for violation in raised.value.field_violations}
    assert fields == {
        "update_mask",
        "policy.password_min_length",
        "policy.session_max_lifetime",
        "policy.session_idle_timeout",
    }


@pytest.mark.parametrize(
    ("email", "ok"),
    [("a@example.com", True), ("a.b+c@sub.example.org", True), ("no-at.example.com", False), ("a@b", False)],
)
def test_email_shape(email: str, ok: bool) -> None:
    violations: list[FieldViolation] = []
    domain.check_email(email, "email", violations)
    assert (not violations) == ok


@pytest.mark.parametrize(
    ("slug", "ok"), [("acme", True), ("a-1", True), ("ab", False), ("-acme", False), ("Acme", False)]
)
def test_slug_shape(slug: str, ok: bool) -> None:
    violations: list[FieldViolation] = []
    domain.check_slug(slug, "slug", violations)
    assert (not violations) == ok


def test_roles_never_customer_and_at_least_one() -> None:
    violations: list[FieldViolation] = []
    domain.check_member_roles([], "roles", violations)
    domain.check_member_roles(["customer", "owner"], "roles", violations)
    assert len(violations) == 2


def test_last_owner_is_kept() -> None:
    with pytest.raises(domain.FailedPrecondition):
        domain.check_last_owner(("owner",), ("admin",), 1)
    domain.check_last_owner(("owner",), ("admin",), 2)
    domain.check_last_owner(("admin",), ("finance",), 1)


def test_password_rules() -> None:
    assert len(common_passwords()) == 10_000
    assert password_problems("x" * 11, 12) == ["must be at least 12 characters"]
    assert password_problems("x" * 12, 12) == []
    assert password_problems("QWERTY123456", 12) == ["is on the list of common or breached passwords"]
    assert password_problems("y" * 129, 12) == ["must be at most 128 characters"]


def test_weak_password_alone_is_password_too_weak() -> None:
    with pytest.raises(domain.PasswordTooWeak):
        domain.raise_if([FieldViolation("password", "too short")], password_field="password")
    with pytest.raises(InvalidArgument) as raised:
        domain.raise_if([FieldViolation("password", "x"), FieldViolation("email", "y")], password_field="password")
    assert type(raised.value) is InvalidArgument


def test_totp_accepts_drift_and_refuses_a_used_step() -> None:
    secret = pyotp.random_base32()
    now_s = 1_000_000.0
    step = totp.step_at(now_s)
    assert totp.matching_step(secret, totp.code_at_step(secret, step - 1), now_s, 0) == step - 1
    assert totp.matching_step(secret, totp.code_at_step(secret, step + 1), now_s, 0) == step + 1
    assert totp.matching_step(secret, totp.code_at_step(secret, step - 2), now_s, 0) is None
    assert totp.matching_step(secret, totp.code_at_step(secret, step), now_s, step) is None
    assert totp.matching_step(secret, "12345", now_s, 0) is None


def test_recovery_codes_are_ten_distinct() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    assert all(totp.normalize_recovery_code(code.upper()) == code for code in codes)


def test_claims_carry_what_the_kit_reads() -> None:
    subject = domain.TokenSubject("p", "o", "service", (), ("a.b.c", "d.e.f"), (), 7, None, None)
    claims = domain.access_claims(subject, issuer="i", audience="a", token_id="j", now_s=10, ttl_s=600, acr="")
    assert claims["scope"] == "a.b.c d.e.f"
    assert claims["exp"] == 610
    assert "sid" not in claims
    assert "did" not in claims


def test_stricter_counter_keeps_the_larger_count_and_the_later_instants() -> None:
    redis_copy = domain.FailureCounter(3, 100.0, None)
    postgres_copy = domain.FailureCounter(7, 50.0, 900.0)
    merged = domain.stricter_counter(redis_copy, postgres_copy)
    assert merged == domain.FailureCounter(7, 100.0, 900.0)
    assert domain.stricter_counter(postgres_copy, redis_copy) == merged
    assert domain.stricter_counter(domain.FailureCounter(), domain.FailureCounter()) == domain.FailureCounter()
