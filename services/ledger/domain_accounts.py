"""Accounts: kinds, balance rules, lifecycle, balances and limits. Pure: no I/O, the clock is passed in."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, replace

from services.kit.errors import FieldViolation, first_differing_field, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.currencies import CURRENCY_CODE_PATTERN
from services.ledger.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    AccountStateConflict,
)


class AccountKind(enum.IntEnum):
    CUSTOMER_WALLET = 1
    OPERATING = 2
    SETTLEMENT = 3
    FEE = 4
    FX_LIQUIDITY = 5
    SUSPENSE = 6


class BalanceRule(enum.IntEnum):
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2
    NONE = 3


class AccountStatus(enum.IntEnum):
    ACTIVE = 1
    FROZEN = 2
    CLOSED = 3


DEFAULT_BALANCE_RULE: dict[AccountKind, BalanceRule] = {
    AccountKind.CUSTOMER_WALLET: BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountKind.OPERATING: BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountKind.FEE: BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    AccountKind.SETTLEMENT: BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS,
    AccountKind.FX_LIQUIDITY: BalanceRule.NONE,
    AccountKind.SUSPENSE: BalanceRule.NONE,
}


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Balances:
    posted_debits_minor: int = 0
    posted_credits_minor: int = 0
    pending_debits_minor: int = 0
    pending_credits_minor: int = 0


@dataclass(frozen=True, slots=True)
class Account:
    organization_id: uuid.UUID
    account_id: uuid.UUID
    customer_id: uuid.UUID | None
    kind: AccountKind
    currency: str
    balance_rule: BalanceRule
    status: AccountStatus
    credit_limit_minor: int
    daily_outflow_limit_minor: int | None
    outflow_day: dt.date
    outflow_used_minor: int
    balances: Balances
    posting_count: int
    last_posted_at: dt.datetime | None
    label: str
    freeze_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None

    def available_minor(self) -> int:
        """What a new debit may use (see AccountBalance.available in the proto)."""
        b = self.balances
        if self.balance_rule is BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS:
            return b.posted_credits_minor - b.posted_debits_minor - b.pending_debits_minor + self.credit_limit_minor
        if self.balance_rule is BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return b.posted_debits_minor - b.posted_credits_minor - b.pending_credits_minor + self.credit_limit_minor
        return b.posted_credits_minor - b.posted_debits_minor

    def signed_balance_minor(self) -> int:
        """The balance in the account's normal direction (debit-normal for CREDITS_MUST_NOT_EXCEED_DEBITS)."""
        return signed_balance(
            self.balance_rule, self.balances.posted_debits_minor, self.balances.posted_credits_minor
        )

    def outflow_used_on(self, day: dt.date) -> int:
        return self.outflow_used_minor if self.outflow_day == day else 0

    def outflow_remaining_on(self, day: dt.date) -> int | None:
        if self.daily_outflow_limit_minor is None:
            return None
        return max(0, self.daily_outflow_limit_minor - self.outflow_used_on(day))


def signed_balance(rule: BalanceRule, debits_minor: int, credits_minor: int) -> int:
    if rule is BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
        return debits_minor - credits_minor
    return credits_minor - debits_minor


@dataclass(frozen=True, slots=True)
class OpenAccountCommand:
    account_id: uuid.UUID
    customer_id: uuid.UUID | None
    kind: AccountKind
    currency: str
    balance_rule: BalanceRule
    credit_limit_minor: int
    daily_outflow_limit_minor: int | None
    label: str

    def first_difference(self, account: Account) -> str | None:
        """The first request field in which ``account`` differs from this command (idempotent replays)."""
        checks: list[tuple[str, object, object]] = [
            ("customer_id", self.customer_id, account.customer_id),
            ("kind", self.kind, account.kind),
            ("currency", self.currency, account.currency),
            ("balance_rule", self.balance_rule, account.balance_rule),
            ("label", self.label, account.label),
        ]
        return first_differing_field(checks)


def validate_money_field(
    field: str, currency: str, amount_minor: int, violations: list[FieldViolation], *, positive: bool
) -> None:
    if not CURRENCY_CODE_PATTERN.match(currency):
        violations.append(FieldViolation(f"{field}.currency", "must be 3 to 12 upper-case letters or digits"))
    if positive and amount_minor <= 0:
        violations.append(FieldViolation(f"{field}.amount_minor", "must be positive"))
    elif amount_minor < 0:
        violations.append(FieldViolation(f"{field}.amount_minor", "must not be negative"))
    elif amount_minor > limits.TRANSFER_AMOUNT_MINOR_MAX:
        violations.append(
            FieldViolation(f"{field}.amount_minor", f"must be at most {limits.TRANSFER_AMOUNT_MINOR_MAX}")
        )


def parse_open_account(
    *,
    account_id: str,
    customer_id: str,
    kind: int,
    currency: str,
    balance_rule: int,
    credit_limit: Money | None,
    daily_outflow_limit: Money | None,
    label: str,
    caller_customer_id: uuid.UUID | None,
) -> OpenAccountCommand:
    """Validates an OpenAccount request, collecting every violation. ``caller_customer_id`` is set for customer
    callers: they may only open their own wallets."""
    violations: list[FieldViolation] = []
    parsed_id = parse_uuid(account_id, "account_id", violations)
    parsed_customer = parse_uuid(customer_id, "customer_id", violations, required=False)
    parsed_kind = AccountKind(kind) if kind in AccountKind._value2member_map_ else None
    if parsed_kind is None:
        violations.append(FieldViolation("kind", "is required"))
    if caller_customer_id is not None:
        if parsed_customer is None and customer_id == "":
            parsed_customer = caller_customer_id
        if parsed_customer != caller_customer_id and customer_id != "":
            violations.append(FieldViolation("customer_id", "a customer may only open its own wallets"))
        if parsed_kind is not None and parsed_kind is not AccountKind.CUSTOMER_WALLET:
            violations.append(FieldViolation("kind", "a customer may only open customer wallets"))
    if parsed_kind is AccountKind.CUSTOMER_WALLET and parsed_customer is None and customer_id == "":
        violations.append(FieldViolation("customer_id", "is required for customer wallets"))
    if parsed_kind is not None and parsed_kind is not AccountKind.CUSTOMER_WALLET and customer_id != "":
        violations.append(FieldViolation("customer_id", "must be empty unless kind is CUSTOMER_WALLET"))
    if not CURRENCY_CODE_PATTERN.match(currency):
        violations.append(FieldViolation("currency", "must be 3 to 12 upper-case letters or digits"))
    rule: BalanceRule | None = None
    if balance_rule == 0:
        rule = DEFAULT_BALANCE_RULE[parsed_kind] if parsed_kind is not None else None
    elif balance_rule in BalanceRule._value2member_map_:
        rule = BalanceRule(balance_rule)
    else:
        violations.append(FieldViolation("balance_rule", "is not a known balance rule"))
    credit_limit_minor = _limit_field("credit_limit", credit_limit, currency, violations) or 0
    outflow_limit_minor = _limit_field("daily_outflow_limit", daily_outflow_limit, currency, violations)
    if len(label) > limits.LABEL_CHARS_MAX:
        violations.append(FieldViolation("label", f"must be at most {limits.LABEL_CHARS_MAX} characters"))
    if violations:
        raise invalid(violations)
    assert parsed_id is not None
    assert parsed_kind is not None
    assert rule is not None
    return OpenAccountCommand(
        account_id=parsed_id,
        customer_id=parsed_customer,
        kind=parsed_kind,
        currency=currency,
        balance_rule=rule,
        credit_limit_minor=credit_limit_minor,
        daily_outflow_limit_minor=outflow_limit_minor,
        label=label,
    )


def _limit_field(field: str, money: Money | None, currency: str, violations: list[FieldViolation]) -> int | None:
    if money is None:
        return None
    validate_money_field(field, money.currency, money.amount_minor, violations, positive=False)
    if money.currency != currency:
        violations.append(FieldViolation(f"{field}.currency", "must be the account's currency"))
    return money.amount_minor


def new_account(organization_id: uuid.UUID, command: OpenAccountCommand, now: dt.datetime) -> Account:
    return Account(
        organization_id=organization_id,
        account_id=command.account_id,
        customer_id=command.customer_id,
        kind=command.kind,
        currency=command.currency,
        balance_rule=command.balance_rule,
        status=AccountStatus.ACTIVE,
        credit_limit_minor=command.credit_limit_minor,
        daily_outflow_limit_minor=command.daily_outflow_limit_minor,
        outflow_day=now.date(),
        outflow_used_minor=0,
        balances=Balances(),
        posting_count=0,
        last_posted_at=None,
        label=command.label,
        freeze_reason="",
        created_at=now,
        updated_at=now,
        closed_at=None,
    )


def freeze(account: Account, reason: str, now: dt.datetime) -> Account:
    if account.status is not AccountStatus.ACTIVE:
        raise AccountStateConflict(str(account.account_id), account.status.name, "freeze")
    return replace(account, status=AccountStatus.FROZEN, freeze_reason=reason, updated_at=now)


def unfreeze(account: Account, now: dt.datetime) -> Account:
    if account.status is not AccountStatus.FROZEN:
        raise AccountStateConflict(str(account.account_id), account.status.name, "unfreeze")
    return replace(account, status=AccountStatus.ACTIVE, freeze_reason="", updated_at=now)


def close(account: Account, now: dt.datetime) -> Account:
    if account.status is AccountStatus.CLOSED:
        raise AccountStateConflict(str(account.account_id), account.status.name, "close")
    b = account.balances
    balance = b.posted_credits_minor - b.posted_debits_minor
    holds = b.pending_debits_minor + b.pending_credits_minor
    if balance != 0 or holds != 0:
        raise AccountNotEmpty(str(account.account_id), balance, holds)
    return replace(account, status=AccountStatus.CLOSED, freeze_reason="", updated_at=now, closed_at=now)


def ensure_usable(account: Account) -> None:
    """Frozen and closed accounts take neither debits nor credits."""
    if account.status is AccountStatus.FROZEN:
        raise AccountFrozen(str(account.account_id))
    if account.status is AccountStatus.CLOSED:
        raise AccountClosed(str(account.account_id))


LIMIT_PATHS = ("credit_limit", "daily_outflow_limit")


@dataclass(frozen=True, slots=True)
class LimitsUpdate:
    set_credit_limit: bool
    credit_limit_minor: int
    set_daily_outflow_limit: bool
    daily_outflow_limit_minor: int | None


def parse_limits_update(
    paths: list[str], credit_limit: Money | None, daily_outflow_limit: Money | None
) -> tuple[LimitsUpdate, list[FieldViolation]]:
    violations: list[FieldViolation] = []
    if not paths:
        violations.append(FieldViolation("update_mask", "must name credit_limit and/or daily_outflow_limit"))
    for path in paths:
        if path not in LIMIT_PATHS:
            violations.append(FieldViolation("update_mask", f"unknown path {path!r}"))
    for field, money in (("credit_limit", credit_limit), ("daily_outflow_limit", daily_outflow_limit)):
        if money is not None:
            validate_money_field(field, money.currency, money.amount_minor, violations, positive=False)
    update = LimitsUpdate(
        set_credit_limit="credit_limit" in paths,
        credit_limit_minor=credit_limit.amount_minor if credit_limit is not None else 0,
        set_daily_outflow_limit="daily_outflow_limit" in paths,
        daily_outflow_limit_minor=daily_outflow_limit.amount_minor if daily_outflow_limit is not None else None,
    )
    return update, violations


def apply_limits(
    account: Account, update: LimitsUpdate, currencies: tuple[str | None, str | None], now: dt.datetime
) -> Account:
    violations: list[FieldViolation] = []
    for field, currency in zip(LIMIT_PATHS, currencies, strict=True):
        if currency is not None and currency != account.currency:
            violations.append(FieldViolation(f"{field}.currency", "must be the account's currency"))
    if violations:
        raise invalid(violations)
    changed = account
    if update.set_credit_limit:
        changed = replace(changed, credit_limit_minor=update.credit_limit_minor)
    if update.set_daily_outflow_limit:
        changed = replace(changed, daily_outflow_limit_minor=update.daily_outflow_limit_minor)
    return replace(changed, updated_at=now)
