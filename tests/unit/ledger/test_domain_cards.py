"""Pure card rules: limits at the boundary, the day's spending, limit updates (customers only tighten), status moves,
expiry."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest

from services.kit.errors import FieldViolation
from services.ledger.domain_accounts import Money
from services.ledger.domain_cards import (
    Card,
    CardLimits,
    CardLimitsUpdate,
    CardStatus,
    apply_limits_update,
    authorize,
    card_secret_id_for,
    change_status,
    parse_limits,
    validate_limit_paths,
)
from services.ledger.errors import CardLimitExceeded, CardLimitRaiseForbidden, CardNotActive, CardStateConflict

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def _card(per_transaction: int | None = 500, daily: int | None = 800, **overrides: object) -> Card:
    card = Card(
        organization_id=uuid.uuid4(),
        card_id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        currency="EUR",
        status=CardStatus.ACTIVE,
        last_four="4242",
        expiry_month=11,
        expiry_year=2029,
        card_secret_id=uuid.uuid4(),
        limits=CardLimits(per_transaction, daily),
        daily_spent_minor=0,
        label="",
        created_at=NOW,
        updated_at=NOW,
        closed_at=None,
    )
    return replace(card, **overrides)  # type: ignore[arg-type]


def test_limits_at_max_and_max_plus_one() -> None:
    assert authorize(_card(), 0, 500, NOW) == 500
    with pytest.raises(CardLimitExceeded) as per_transaction:
        authorize(_card(), 0, 501, NOW)
    assert per_transaction.value.metadata["limit"] == "per_transaction"
    assert authorize(_card(), 500, 300, NOW) == 800
    with pytest.raises(CardLimitExceeded) as daily:
        authorize(_card(), 800, 1, NOW)
    assert daily.value.metadata["remaining_minor"] == "0"
    with pytest.raises(CardLimitExceeded) as over:
        authorize(_card(), 900, 1, NOW)  # a limit lowered below what the day already spent
    assert over.value.metadata["remaining_minor"] == "0"
    assert authorize(_card(None, None), 10**12, 10**12, NOW) == 2 * 10**12


def _update(per_transaction: int | None, daily: int | None, *paths: str) -> CardLimitsUpdate:
    return CardLimitsUpdate(frozenset(paths), CardLimits(per_transaction, daily))


def test_limit_updates_replace_only_the_masked_limits() -> None:
    both = ("limits.per_transaction_limit", "limits.daily_limit")
    assert apply_limits_update(_card(), _update(50, None, both[0]), tighten_only=False, now=NOW).limits == CardLimits(
        50, 800
    )
    removed = apply_limits_update(_card(), _update(None, None, *both), tighten_only=False, now=NOW)
    assert removed.limits == CardLimits(None, None)
    raised = apply_limits_update(_card(), _update(9_000, 9_000, *both), tighten_only=False, now=NOW)
    assert raised.limits == CardLimits(9_000, 9_000)
    assert _update(1, 2, both[1]).fingerprint() == "limits.daily_limit=2"
    assert _update(1, None, *both).fingerprint() == "limits.per_transaction_limit=1;limits.daily_limit=None"


def test_customers_only_tighten_limits() -> None:
    daily = "limits.daily_limit"
    lowered = apply_limits_update(_card(), _update(None, 800, daily), tighten_only=True, now=NOW)
    assert lowered.limits == CardLimits(500, 800)  # equal to the old limit: allowed
    assert apply_limits_update(_card(500, None), _update(None, 1, daily), tighten_only=True, now=NOW).limits == (
        CardLimits(500, 1)
    )
    for update in (_update(None, 801, daily), _update(None, None, daily)):
        with pytest.raises(CardLimitRaiseForbidden) as refused:
            apply_limits_update(_card(), update, tighten_only=True, now=NOW)
        assert refused.value.metadata["field"] == daily


def test_limits_change_on_active_or_frozen_cards_only() -> None:
    update = _update(None, 100, "limits.daily_limit")
    frozen = change_status(_card(), "freeze", NOW)
    assert apply_limits_update(frozen, update, tighten_only=False, now=NOW).limits.daily_minor == 100
    closed = change_status(frozen, "close", NOW)
    expired = _card(expiry_month=10, expiry_year=2026)
    for card in (closed, expired):
        with pytest.raises(CardNotActive):
            apply_limits_update(card, update, tighten_only=False, now=NOW)


def test_limit_paths() -> None:
    violations: list[FieldViolation] = []
    assert validate_limit_paths(["limits.daily_limit", "daily_limit"], violations) == {"limits.daily_limit"}
    assert [v.field for v in violations] == ["update_mask"]
    violations = []
    assert validate_limit_paths([], violations) == frozenset()
    assert [v.field for v in violations] == ["update_mask"]


def test_status_moves_and_inactive_cards_decline() -> None:
    frozen = change_status(_card(), "freeze", NOW)
    with pytest.raises(CardNotActive):
        authorize(frozen, 0, 1, NOW)
    active = change_status(frozen, "unfreeze", NOW)
    closed = change_status(active, "close", NOW)
    assert closed.closed_at == NOW
    for action in ("freeze", "unfreeze", "close"):
        with pytest.raises(CardStateConflict):
            change_status(closed, action, NOW)
    with pytest.raises(CardStateConflict):
        change_status(active, "unfreeze", NOW)


def test_cards_expire_after_their_month() -> None:
    card = _card(expiry_month=11, expiry_year=2026)
    assert card.status_at(NOW) is CardStatus.ACTIVE
    assert card.status_at(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)) is CardStatus.EXPIRED
    with pytest.raises(CardNotActive):
        authorize(card, 0, 1, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


def test_limits_input_and_secret_ids() -> None:
    violations: list[FieldViolation] = []
    limits = parse_limits("limits", "EUR", Money("EUR", 5), Money("USD", 9), violations)
    assert limits == CardLimits(5, None)
    assert [v.field for v in violations] == ["limits.daily_limit.currency"]
    violations = []
    parse_limits("limits", "EUR", Money("EUR", 0), None, violations)
    assert [v.field for v in violations] == ["limits.per_transaction_limit.amount_minor"]
    card_id = uuid.uuid4()
    assert card_secret_id_for(card_id) == card_secret_id_for(card_id) != card_secret_id_for(uuid.uuid4())
