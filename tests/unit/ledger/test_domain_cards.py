"""Pure card rules: limits at the boundary, the day's spending and what release gives back, status moves, expiry."""

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
    CardStatus,
    authorize,
    card_secret_id_for,
    change_status,
    give_back,
    parse_limits,
)
from services.ledger.errors import CardLimitExceeded, CardNotActive, CardStateConflict

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
        spent_day=NOW.date(),
        spent_minor=0,
        label="",
        created_at=NOW,
        updated_at=NOW,
        closed_at=None,
    )
    return replace(card, **overrides)  # type: ignore[arg-type]


def test_limits_at_max_and_max_plus_one() -> None:
    card = authorize(_card(), 500, NOW)
    assert card.spent_minor == 500
    with pytest.raises(CardLimitExceeded) as per_transaction:
        authorize(_card(), 501, NOW)
    assert per_transaction.value.metadata["limit"] == "per_transaction"
    card = authorize(card, 300, NOW)
    assert card.spent_minor == 800
    with pytest.raises(CardLimitExceeded) as daily:
        authorize(card, 1, NOW)
    assert daily.value.metadata["remaining_minor"] == "0"
    assert authorize(_card(None, None), 10**12, NOW).spent_minor == 10**12


def test_a_new_day_starts_from_zero_and_release_gives_back_only_its_day() -> None:
    spent = authorize(_card(), 500, NOW)
    tomorrow = NOW + dt.timedelta(days=1)
    assert authorize(spent, 500, tomorrow).spent_minor == 500
    assert give_back(spent, 200, NOW.date(), NOW).spent_minor == 300
    assert give_back(spent, 900, NOW.date(), NOW).spent_minor == 0
    assert give_back(spent, 200, NOW.date() - dt.timedelta(days=1), NOW).spent_minor == 500


def test_status_moves_and_inactive_cards_decline() -> None:
    frozen = change_status(_card(), "freeze", NOW)
    with pytest.raises(CardNotActive):
        authorize(frozen, 1, NOW)
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
        authorize(card, 1, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


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
