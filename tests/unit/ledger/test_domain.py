"""Pure rules of accounts, transfers and holds, with boundary values and hypothesis invariants."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kit.errors import InvalidArgument
from services.ledger import limits
from services.ledger.domain_accounts import (
    AccountKind,
    AccountStatus,
    BalanceRule,
    Money,
    OpenAccountCommand,
    close,
    freeze,
    new_account,
    parse_open_account,
    unfreeze,
)
from services.ledger.domain_transfers import (
    HoldAction,
    HoldTransition,
    TransferCommand,
    TransferStatus,
    apply_transfer,
    finalize_hold,
    first_difference,
    parse_transfer,
)
from services.ledger.errors import (
    AccountFrozen,
    AccountNotEmpty,
    CreditLimitExceeded,
    CurrencyMismatch,
    DailyLimitExceeded,
    HoldAmountExceeded,
    HoldNotPending,
    InsufficientFunds,
    SameAccount,
)

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
ORG = uuid.uuid4()


def _account(
    rule: BalanceRule = BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    *,
    credit_limit: int = 0,
    outflow_limit: int | None = None,
    currency: str = "EUR",
):  # type: ignore[no-untyped-def]
    command = OpenAccountCommand(
        uuid.uuid4(), None, AccountKind.OPERATING, currency, rule, credit_limit, outflow_limit, ""
    )
    return new_account(ORG, command, NOW)


def _command(debit, credit, amount: int, *, pending: bool = False, currency: str = "EUR") -> TransferCommand:  # type: ignore[no-untyped-def]
    return TransferCommand(
        uuid.uuid4(), debit.account_id, credit.account_id, currency, amount, pending, 1000 if pending else 0, ""
    )


def _funded(amount: int, **kwargs):  # type: ignore[no-untyped-def]
    account = _account(**kwargs)
    source = _account(BalanceRule.NONE)
    return apply_transfer(ORG, _command(source, account, amount), source, account, created_by="t", now=NOW).credit


def test_transfer_up_to_available_posts_and_one_more_is_declined_with_the_number() -> None:
    payer, payee = _funded(100), _account()
    applied = apply_transfer(ORG, _command(payer, payee, 100), payer, payee, created_by="t", now=NOW)
    assert applied.transfer.status is TransferStatus.POSTED
    assert applied.debit.available_minor() == 0
    assert [p.account_seq for p in applied.postings] == [2, 1]
    with pytest.raises(InsufficientFunds) as declined:
        apply_transfer(ORG, _command(payer, payee, 101), payer, payee, created_by="t", now=NOW)
    assert declined.value.metadata["available_minor"] == "100"


def test_credit_limit_extends_available() -> None:
    payer, payee = _account(credit_limit=50), _account()
    apply_transfer(ORG, _command(payer, payee, 50), payer, payee, created_by="t", now=NOW)
    with pytest.raises(InsufficientFunds):
        apply_transfer(ORG, _command(payer, payee, 51), payer, payee, created_by="t", now=NOW)


def test_credit_side_rule_of_debit_normal_accounts() -> None:
    settlement = _account(BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS)
    payer = _funded(10)
    with pytest.raises(CreditLimitExceeded):
        apply_transfer(ORG, _command(payer, settlement, 1), payer, settlement, created_by="t", now=NOW)


def test_daily_outflow_limit_counts_the_utc_day_and_resets() -> None:
    payer, payee = _funded(1_000, outflow_limit=100), _account()
    applied = apply_transfer(ORG, _command(payer, payee, 60), payer, payee, created_by="t", now=NOW)
    with pytest.raises(DailyLimitExceeded) as declined:
        apply_transfer(ORG, _command(applied.debit, payee, 41), applied.debit, payee, created_by="t", now=NOW)
    assert declined.value.metadata["remaining_minor"] == "40"
    tomorrow = NOW + dt.timedelta(days=1)
    again = apply_transfer(
        ORG, _command(applied.debit, payee, 100), applied.debit, payee, created_by="t", now=tomorrow
    )
    assert again.debit.outflow_used_minor == 100


def test_frozen_and_currency_checks() -> None:
    payer, payee = _funded(100), _account()
    frozen = freeze(payee, "x", NOW)
    with pytest.raises(AccountFrozen):
        apply_transfer(ORG, _command(payer, frozen, 1), payer, frozen, created_by="t", now=NOW)
    usd = _account(currency="USD")
    with pytest.raises(CurrencyMismatch):
        apply_transfer(ORG, _command(payer, usd, 1), payer, usd, created_by="t", now=NOW)


def test_hold_post_partial_void_and_only_one_transition() -> None:
    payer, payee = _funded(100), _account()
    held = apply_transfer(ORG, _command(payer, payee, 80, pending=True), payer, payee, created_by="t", now=NOW)
    assert held.debit.available_minor() == 20
    assert held.transfer.hold_expires_at == NOW + dt.timedelta(seconds=1)
    with pytest.raises(HoldAmountExceeded):
        finalize_hold(held.transfer, held.debit, held.credit, HoldTransition(HoldAction.POST, 81), NOW)
    posted = finalize_hold(held.transfer, held.debit, held.credit, HoldTransition(HoldAction.POST, 30), NOW)
    assert posted.debit.available_minor() == 70
    assert posted.debit.balances.pending_debits_minor == 0
    assert posted.debit.outflow_used_minor == 30
    with pytest.raises(HoldNotPending):
        finalize_hold(posted.transfer, posted.debit, posted.credit, HoldTransition(HoldAction.VOID), NOW)
    voided = finalize_hold(held.transfer, held.debit, held.credit, HoldTransition(HoldAction.EXPIRE), NOW)
    assert voided.transfer.status is TransferStatus.EXPIRED
    assert voided.debit.available_minor() == 100


def test_lifecycle_moves() -> None:
    account = _account()
    with pytest.raises(InvalidArgument):
        parse_open_account(
            account_id="x",
            customer_id="",
            kind=0,
            currency="eur",
            balance_rule=9,
            credit_limit=Money("EUR", -1),
            daily_outflow_limit=None,
            label="",
            caller_customer_id=None,
        )
    assert unfreeze(freeze(account, "r", NOW), NOW).status is AccountStatus.ACTIVE
    assert close(account, NOW).status is AccountStatus.CLOSED
    with pytest.raises(AccountNotEmpty):
        close(_funded(1), NOW)


def test_parse_transfer_limits_and_same_account() -> None:
    account = str(uuid.uuid4())
    base = dict(
        transfer_id=str(uuid.uuid4()),
        debit_account_id=account,
        credit_account_id=str(uuid.uuid4()),
        pending=False,
        hold_timeout_ms=0,
        reference="",
    )
    ok, violations = parse_transfer(amount=Money("EUR", limits.TRANSFER_AMOUNT_MINOR_MAX), **base)  # type: ignore[arg-type]
    assert ok is not None
    assert not violations
    _, violations = parse_transfer(amount=Money("EUR", limits.TRANSFER_AMOUNT_MINOR_MAX + 1), **base)  # type: ignore[arg-type]
    assert [v.field for v in violations] == ["amount.amount_minor"]
    with pytest.raises(SameAccount):
        parse_transfer(amount=Money("EUR", 1), **{**base, "credit_account_id": account})  # type: ignore[arg-type]
    _, violations = parse_transfer(
        amount=Money("EUR", 1),
        **{**base, "pending": True, "hold_timeout_ms": limits.HOLD_TIMEOUT_S_MAX * 1000 + 1},  # type: ignore[arg-type]
    )
    assert [v.field for v in violations] == ["hold_timeout"]


def test_first_difference_names_the_field() -> None:
    payer, payee = _funded(100), _account()
    command = _command(payer, payee, 10)
    stored = apply_transfer(ORG, command, payer, payee, created_by="t", now=NOW).transfer
    assert first_difference(command, stored) is None
    changed = TransferCommand(
        command.transfer_id, command.debit_account_id, command.credit_account_id, "EUR", 11, False, 0, ""
    )
    assert first_difference(changed, stored) == "amount.amount_minor"


@given(st.lists(st.tuples(st.integers(1, 500), st.booleans()), max_size=30))
def test_random_transfers_never_overdraw_and_balance(amounts: list[tuple[int, bool]]) -> None:
    payer, payee = _funded(1_000), _account()
    for amount, pending in amounts:
        try:
            applied = apply_transfer(
                ORG, _command(payer, payee, amount, pending=pending), payer, payee, created_by="t", now=NOW
            )
        except InsufficientFunds:
            continue
        payer, payee = applied.debit, applied.credit
        assert payer.available_minor() >= 0
    b = payer.balances
    assert b.posted_debits_minor + b.pending_debits_minor <= b.posted_credits_minor
    assert payee.balances.posted_credits_minor == b.posted_debits_minor
