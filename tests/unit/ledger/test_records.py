"""``evolve`` builds exactly what ``dataclasses.replace`` builds, and refuses the classes it cannot copy faithfully."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain_accounts import Account, AccountKind, AccountStatus, BalanceRule, Balances
from services.ledger.records import evolve

NOW = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
ACCOUNT = Account(
    organization_id=uuid.uuid4(),
    account_id=uuid.uuid4(),
    customer_id=None,
    kind=AccountKind.OPERATING,
    currency="EUR",
    balance_rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    status=AccountStatus.ACTIVE,
    credit_limit_minor=0,
    daily_outflow_limit_minor=None,
    outflow_day=NOW.date(),
    outflow_used_minor=0,
    balances=Balances(),
    posting_count=0,
    last_posted_at=None,
    label="",
    freeze_reason="",
    created_at=NOW,
    updated_at=NOW,
    closed_at=None,
)
FIELDS = [f.name for f in dataclasses.fields(Account)]


@given(st.sets(st.sampled_from(FIELDS)), st.integers())
def test_evolve_equals_replace(changed: set[str], value: int) -> None:
    changes = {name: value for name in changed}
    evolved = evolve(ACCOUNT, **changes)
    assert type(evolved) is Account
    assert evolved == dataclasses.replace(ACCOUNT, **changes)  # type: ignore[arg-type]
    assert evolved is not ACCOUNT


def test_evolve_leaves_the_original_and_stays_frozen() -> None:
    evolved = evolve(ACCOUNT, posting_count=3, balances=Balances(1, 2, 3, 4))
    assert ACCOUNT.posting_count == 0
    assert evolved.balances == Balances(1, 2, 3, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.posting_count = 4  # type: ignore[misc]


def test_evolve_refuses_unknown_fields() -> None:
    with pytest.raises(AssertionError, match="no fields"):
        evolve(ACCOUNT, posting_counts=1)


@dataclasses.dataclass(slots=True)
class _Mutable:
    x: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    x: int

    def __post_init__(self) -> None:
        assert self.x >= 0


@pytest.mark.parametrize("record", [_Mutable(1), _Checked(1)], ids=["not frozen", "post_init"])
def test_evolve_refuses_classes_it_cannot_copy_faithfully(record: object) -> None:
    with pytest.raises(AssertionError):
        evolve(record, x=2)
