"""Pure rules of reversals: validation, what is left to reverse, the reversal transfer, replay differences."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kit.errors import InvalidArgument
from services.ledger.domain_accounts import Money
from services.ledger.domain_reversals import (
    NO_REVERSALS,
    ReversalReason,
    ReversalTotals,
    ensure_still_left,
    parse_reversal,
    record_of,
    remaining_minor,
    replay_difference,
    reversal_amount,
    reversal_transfer,
)
from services.ledger.domain_transfers import Transfer, TransferKind, TransferStatus, VoidReason
from services.ledger.errors import ReversalExceedsOriginal, TransferNotPosted

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
ORG = uuid.uuid4()


def _original(posted_minor: int = 1_000, status: TransferStatus = TransferStatus.POSTED) -> Transfer:
    return Transfer(
        organization_id=ORG,
        transfer_id=uuid.uuid4(),
        debit_account_id=uuid.uuid4(),
        credit_account_id=uuid.uuid4(),
        currency="EUR",
        amount_minor=max(posted_minor, 1),
        kind=TransferKind.CARD_PAYMENT,
        status=status,
        reference="order-1",
        pending=False,
        hold_timeout_ms=0,
        posted_amount_minor=posted_minor if status is TransferStatus.POSTED else 0,
        hold_expires_at=None,
        void_reason=VoidReason.UNSPECIFIED,
        batch_id=None,
        exchange_id=None,
        created_by_principal_id="maker",
        finalize_request_id=None,
        sequence=1,
        created_at=NOW,
        posted_at=NOW,
        finalized_at=None,
    )


def _command(original: Transfer, amount_minor: int | None = None, **fields: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "transfer_id": str(uuid.uuid4()),
        "original_transfer_id": str(original.transfer_id),
        "amount": None if amount_minor is None else Money("EUR", amount_minor),
        "reason": int(ReversalReason.DISPUTE_UPHELD),
        "complaint_id": "",
        "reference": "",
    }
    values.update(fields)
    return parse_reversal(**values)  # type: ignore[arg-type]


def test_parse_collects_every_violation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_reversal(
            transfer_id="x",
            original_transfer_id="",
            amount=Money("eur", 0),
            reason=0,
            complaint_id="nope",
            reference="r" * 141,
        )
    fields = {v.field for v in caught.value.field_violations}
    assert fields == {
        "transfer_id",
        "original_transfer_id",
        "amount.currency",
        "amount.amount_minor",
        "reason",
        "complaint_id",
        "reference",
    }


def test_a_transfer_cannot_reverse_itself() -> None:
    same = str(uuid.uuid4())
    with pytest.raises(InvalidArgument) as caught:
        parse_reversal(
            transfer_id=same, original_transfer_id=same, amount=None, reason=1, complaint_id="", reference=""
        )
    assert [v.field for v in caught.value.field_violations] == ["transfer_id"]


def test_unset_amount_reverses_everything_left() -> None:
    original = _original(1_000)
    assert reversal_amount(_command(original), original, NO_REVERSALS) == 1_000
    assert reversal_amount(_command(original), original, ReversalTotals(300, 200)) == 700


def test_never_more_than_is_left_and_nothing_when_nothing_is_left() -> None:
    original = _original(1_000)
    totals = ReversalTotals(reserved_minor=600, reversed_minor=600)
    assert reversal_amount(_command(original, 400), original, totals) == 400
    with pytest.raises(ReversalExceedsOriginal) as caught:
        reversal_amount(_command(original, 401), original, totals)
    assert caught.value.metadata["remaining_minor"] == "400"
    with pytest.raises(ReversalExceedsOriginal) as caught:
        reversal_amount(_command(original), original, ReversalTotals(1_000, 1_000))
    assert caught.value.metadata["remaining_minor"] == "0"


def test_held_reversals_reserve_what_they_reverse() -> None:
    original = _original(1_000)
    # 300 posted plus 500 held for review: 200 left, and the original shows 300 reversed.
    totals = ReversalTotals(reserved_minor=800, reversed_minor=300)
    assert remaining_minor(original, totals) == 200
    with pytest.raises(ReversalExceedsOriginal):
        ensure_still_left(original, totals, 201)
    ensure_still_left(original, totals, 200)


@pytest.mark.parametrize(
    "status",
    [
        TransferStatus.PENDING,
        TransferStatus.VOIDED,
        TransferStatus.EXPIRED,
        TransferStatus.AWAITING_APPROVAL,
        TransferStatus.AWAITING_REVIEW,
    ],
)
def test_only_posted_transfers_are_reversible(status: TransferStatus) -> None:
    original = _original(0, status)
    with pytest.raises(TransferNotPosted) as caught:
        reversal_amount(_command(original, 1), original, NO_REVERSALS)
    assert caught.value.metadata["status"] == status.name


def test_currency_must_be_the_originals() -> None:
    original = _original(1_000)
    command = replace(_command(original, 10), amount=Money("USD", 10))
    with pytest.raises(InvalidArgument) as caught:
        reversal_amount(command, original, NO_REVERSALS)
    assert [v.field for v in caught.value.field_violations] == ["amount.currency"]


def test_the_reversal_runs_back_from_credit_to_debit_and_links_the_original() -> None:
    original = _original(1_000)
    command = _command(original, 250, reference="refund")
    transfer = reversal_transfer(command, original, 250)
    assert (transfer.debit_account_id, transfer.credit_account_id) == (
        original.credit_account_id,
        original.debit_account_id,
    )
    assert transfer.kind is TransferKind.REVERSAL
    assert transfer.reversal_of_transfer_id == original.transfer_id
    assert (transfer.currency, transfer.amount_minor, transfer.pending) == ("EUR", 250, False)
    assert transfer.reference == "refund"


def test_replay_difference_names_the_first_changed_field() -> None:
    original = _original(1_000)
    complaint = str(uuid.uuid4())
    command = _command(original, 250, complaint_id=complaint, reference="r")
    record = record_of(command)
    stored = replace(original, transfer_id=command.transfer_id, reference="r", amount_minor=250)
    assert replay_difference(command, record, stored) is None
    assert replay_difference(replace(command, amount=Money("EUR", 251)), record, stored) == "amount.amount_minor"
    assert replay_difference(replace(command, amount=None), record, stored) == "amount.amount_minor"
    assert replay_difference(replace(command, reason=ReversalReason.FRAUD), record, stored) == "reason"
    assert replay_difference(replace(command, complaint_id=None), record, stored) == "complaint_id"
    assert replay_difference(replace(command, reference="other"), record, stored) == "reference"
    assert replay_difference(replace(command, original_transfer_id=uuid.uuid4()), record, stored) == (
        "original_transfer_id"
    )
    # The id names a transfer that is not a reversal.
    assert replay_difference(command, None, stored) == "original_transfer_id"


@given(
    posted=st.integers(min_value=1, max_value=10**12),
    pieces=st.lists(st.integers(min_value=1, max_value=10**12), max_size=20),
)
def test_accepted_reversals_never_sum_above_the_original(posted: int, pieces: list[int]) -> None:
    original = _original(posted)
    reserved = 0
    for piece in pieces:
        totals = ReversalTotals(reserved, reserved)
        if piece > posted - reserved:
            with pytest.raises(ReversalExceedsOriginal) as refused:
                reversal_amount(_command(original, piece), original, totals)
            assert refused.value.metadata["remaining_minor"] == str(posted - reserved)
            continue
        accepted = reversal_amount(_command(original, piece), original, totals)
        assert accepted == piece
        reserved += accepted
        assert reserved <= posted
