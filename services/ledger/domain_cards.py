"""Virtual cards: status moves and spending limits (per transaction, per UTC day). Pure: no I/O.

A card's day is never a stored counter: it is derived, at each read, from the card's payments authorized that UTC
day — what was captured of them plus the full amount of those still open (pending, awaiting review). A released,
voided or expired authorization therefore stops counting by itself, whichever path finalized it (release,
VoidPendingTransfer, the expiry sweeper). The card's number and CVV are never here: the vault holds
them; the ledger keeps the vault's id (``card_secret_id``), the last four digits and the expiry."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, replace

from services.kit.errors import FieldViolation
from services.ledger import limits
from services.ledger.domain_accounts import Money, validate_money_field
from services.ledger.errors import CardLimitExceeded, CardLimitRaiseForbidden, CardNotActive, CardStateConflict


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
    # Authorized on the UTC day the card was read (see the module docstring); never stored.
    daily_spent_minor: int
    label: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None

    def status_at(self, now: dt.datetime) -> CardStatus:
        """EXPIRED once the expiry month is over (cards expire at the end of their month, UTC)."""
        if self.status is CardStatus.ACTIVE and (now.year, now.month) > (self.expiry_year, self.expiry_month):
            return CardStatus.EXPIRED
        return self.status


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


def authorize(card: Card, spent_today_minor: int, amount_minor: int, now: dt.datetime) -> int:
    """What the card will have authorized today once ``amount_minor`` is, or the decline (inactive card, a limit).
    ``spent_today_minor`` must be read under the card's row lock, after taking it."""
    assert spent_today_minor >= 0
    assert amount_minor > 0
    ensure_active(card, now)
    per_transaction = card.limits.per_transaction_minor
    if per_transaction is not None and amount_minor > per_transaction:
        raise CardLimitExceeded(str(card.card_id), "per_transaction", per_transaction)
    daily = card.limits.daily_minor
    if daily is not None and spent_today_minor + amount_minor > daily:
        raise CardLimitExceeded(str(card.card_id), "daily", max(0, daily - spent_today_minor))
    return spent_today_minor + amount_minor


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


# The update-mask paths of UpdateCardLimits, in CardLimits field order.
LIMIT_PATHS = ("limits.per_transaction_limit", "limits.daily_limit")
# Statuses whose limits may change: a closed or expired card authorizes nothing any more.
LIMITS_CHANGEABLE = frozenset({CardStatus.ACTIVE, CardStatus.FROZEN})


@dataclass(frozen=True, slots=True)
class CardLimitsUpdate:
    """Which limits UpdateCardLimits changes (``paths``) and their new values (None removes a listed limit)."""

    paths: frozenset[str]
    limits: CardLimits

    def fingerprint(self) -> str:
        """The update's content, compared when its request id is replayed."""
        values = (self.limits.per_transaction_minor, self.limits.daily_minor)
        return ";".join(
            f"{path}={value}" for path, value in zip(LIMIT_PATHS, values, strict=True) if path in self.paths
        )


def validate_limit_paths(paths: list[str], violations: list[FieldViolation]) -> frozenset[str]:
    if not paths:
        violations.append(FieldViolation("update_mask", f"must name {' and/or '.join(LIMIT_PATHS)}"))
    for path in paths:
        if path not in LIMIT_PATHS:
            violations.append(FieldViolation("update_mask", f"unknown path {path!r}"))
    return frozenset(p for p in paths if p in LIMIT_PATHS)


def apply_limits_update(card: Card, update: CardLimitsUpdate, *, tighten_only: bool, now: dt.datetime) -> Card:
    """The card with its new limits. ``tighten_only`` (customers): a limit may be set where there was none or
    lowered, never raised or removed; raising is for the tenant's staff."""
    status = card.status_at(now)
    if status not in LIMITS_CHANGEABLE:
        raise CardNotActive(str(card.card_id), status.name)
    new = card.limits
    if LIMIT_PATHS[0] in update.paths:
        new = replace(new, per_transaction_minor=update.limits.per_transaction_minor)
    if LIMIT_PATHS[1] in update.paths:
        new = replace(new, daily_minor=update.limits.daily_minor)
    if tighten_only:
        pairs = (
            (LIMIT_PATHS[0], card.limits.per_transaction_minor, new.per_transaction_minor),
            (LIMIT_PATHS[1], card.limits.daily_minor, new.daily_minor),
        )
        for path, old_minor, new_minor in pairs:
            if not _tightens(old_minor, new_minor):
                raise CardLimitRaiseForbidden(str(card.card_id), path)
    return replace(card, limits=new, updated_at=now)


def _tightens(old_minor: int | None, new_minor: int | None) -> bool:
    """True when ``new_minor`` allows no more than ``old_minor`` (None: no limit)."""
    if new_minor is None:
        return old_minor is None
    return old_minor is None or new_minor <= old_minor


def validate_label(label: str, violations: list[FieldViolation]) -> None:
    if len(label) > limits.CARD_LABEL_CHARS_MAX:
        violations.append(FieldViolation("label", f"must be at most {limits.CARD_LABEL_CHARS_MAX} characters"))
