"""Virtual cards: status moves, spending limits (per transaction, per UTC day) and what an authorization or its
capture or release does to the card's day. Pure: no I/O. The card's number and CVV are never here: the vault holds
them; the ledger keeps the vault's id (``card_secret_id``), the last four digits and the expiry."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, replace

from services.kit.errors import FieldViolation
from services.ledger import limits
from services.ledger.domain_accounts import Money, validate_money_field
from services.ledger.errors import CardLimitExceeded, CardNotActive, CardStateConflict


class CardStatus(enum.IntEnum):
    ACTIVE = 1
    FROZEN = 2
    CLOSED = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class CardLimits:
    per_transaction_minor: int | None
    daily_minor: int | None


@dataclass(frozen=True, slots=True)
class Card:
    organization_id: uuid.UUID
    card_id: uuid.UUID
    account_id: uuid.UUID
    customer_id: uuid.UUID
    currency: str
    status: CardStatus
    last_four: str
    expiry_month: int
    expiry_year: int
    card_secret_id: uuid.UUID
    limits: CardLimits
    spent_day: dt.date
    spent_minor: int
    label: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None

    def status_at(self, now: dt.datetime) -> CardStatus:
        """EXPIRED once the expiry month is over (cards expire at the end of their month, UTC)."""
        if self.status is CardStatus.ACTIVE and (now.year, now.month) > (self.expiry_year, self.expiry_month):
            return CardStatus.EXPIRED
        return self.status

    def spent_on(self, day: dt.date) -> int:
        return self.spent_minor if self.spent_day == day else 0


def card_secret_id_for(card_id: uuid.UUID) -> uuid.UUID:
    """The vault id of a card's secret, derived from the card id so an IssueCard retry reuses the stored secret."""
    return uuid.uuid5(_CARD_SECRET_NAMESPACE, str(card_id))


_CARD_SECRET_NAMESPACE = uuid.UUID("9a3c0f6e-4b1d-5c2a-8e7f-0d1c2b3a4f5e")


def parse_limits(
    field: str, currency: str, per_transaction: Money | None, daily: Money | None, violations: list[FieldViolation]
) -> CardLimits:
    values: list[int | None] = []
    for name, money in (("per_transaction_limit", per_transaction), ("daily_limit", daily)):
        if money is None:
            values.append(None)
            continue
        before = len(violations)
        validate_money_field(f"{field}.{name}", money.currency, money.amount_minor, violations, positive=True)
        if money.currency != currency:
            violations.append(FieldViolation(f"{field}.{name}.currency", f"must be the account's {currency}"))
        values.append(money.amount_minor if len(violations) == before else None)
    return CardLimits(values[0], values[1])


def ensure_active(card: Card, now: dt.datetime) -> None:
    status = card.status_at(now)
    if status is not CardStatus.ACTIVE:
        raise CardNotActive(str(card.card_id), status.name)


def authorize(card: Card, amount_minor: int, now: dt.datetime) -> Card:
    """The card after authorizing ``amount_minor`` today, or the decline (inactive card, a limit)."""
    ensure_active(card, now)
    per_transaction = card.limits.per_transaction_minor
    if per_transaction is not None and amount_minor > per_transaction:
        raise CardLimitExceeded(str(card.card_id), "per_transaction", per_transaction)
    today = now.date()
    spent = card.spent_on(today)
    daily = card.limits.daily_minor
    if daily is not None and spent + amount_minor > daily:
        raise CardLimitExceeded(str(card.card_id), "daily", max(0, daily - spent))
    return replace(card, spent_day=today, spent_minor=spent + amount_minor, updated_at=now)


def give_back(card: Card, amount_minor: int, authorized_day: dt.date, now: dt.datetime) -> Card:
    """A released authorization (or the uncaptured rest of one) no longer counts against the day it was made."""
    assert amount_minor >= 0
    if card.spent_day != authorized_day:
        return card
    return replace(card, spent_minor=max(0, card.spent_minor - amount_minor), updated_at=now)


def change_status(card: Card, action: str, now: dt.datetime) -> Card:
    """freeze: ACTIVE → FROZEN; unfreeze: FROZEN → ACTIVE; close: ACTIVE | FROZEN → CLOSED (final)."""
    allowed = {
        "freeze": ({CardStatus.ACTIVE}, CardStatus.FROZEN),
        "unfreeze": ({CardStatus.FROZEN}, CardStatus.ACTIVE),
        "close": ({CardStatus.ACTIVE, CardStatus.FROZEN}, CardStatus.CLOSED),
    }
    sources, target = allowed[action]
    if card.status not in sources:
        raise CardStateConflict(str(card.card_id), card.status.name, action)
    closed_at = now if target is CardStatus.CLOSED else card.closed_at
    return replace(card, status=target, updated_at=now, closed_at=closed_at)


def validate_label(label: str, violations: list[FieldViolation]) -> None:
    if len(label) > limits.CARD_LABEL_CHARS_MAX:
        violations.append(FieldViolation("label", f"must be at most {limits.CARD_LABEL_CHARS_MAX} characters"))
