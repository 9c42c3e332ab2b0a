"""The Transfer message written in place (``fill_transfer``, used for every batch result) is byte for byte the one a
constructor with keyword arguments builds, for every shape of transfer."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest

from services.kit.timestamps import timestamp_from_datetime
from services.ledger import wire
from services.ledger.domain_transfers import (
    RiskCheck,
    RiskDecision,
    RiskRecord,
    Transfer,
    TransferKind,
    TransferStatus,
    VoidReason,
)
from services.ledger.service_transfers import BatchResult
from services.ledger.store_transfer_links import TransferLinks
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_transfers_pb2

NOW = dt.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=dt.UTC)

POSTED = Transfer(
    organization_id=uuid.uuid4(),
    transfer_id=uuid.uuid4(),
    debit_account_id=uuid.uuid4(),
    credit_account_id=uuid.uuid4(),
    currency="EUR",
    amount_minor=1_234,
    kind=TransferKind.STANDARD,
    status=TransferStatus.POSTED,
    reference="invoice 7",
    pending=False,
    hold_timeout_ms=0,
    posted_amount_minor=1_234,
    hold_expires_at=None,
    void_reason=VoidReason.UNSPECIFIED,
    batch_id=uuid.uuid4(),
    exchange_id=None,
    created_by_principal_id="maker",
    finalize_request_id=None,
    sequence=42,
    created_at=NOW,
    posted_at=NOW,
    finalized_at=None,
)
HELD = replace(
    POSTED,
    status=TransferStatus.AWAITING_REVIEW,
    pending=True,
    hold_timeout_ms=60_000,
    posted_amount_minor=0,
    hold_expires_at=NOW + dt.timedelta(minutes=1),
    posted_at=None,
    batch_id=None,
    risk=RiskRecord(RiskCheck.ASSESSED, RiskDecision.REVIEW, 71, ("NEW_DEVICE", "VELOCITY"), 3, uuid.uuid4()),
)
VOIDED = replace(
    HELD,
    status=TransferStatus.VOIDED,
    void_reason=VoidReason.REVIEW_REJECTED,
    finalize_request_id=uuid.uuid4(),
    finalized_at=NOW + dt.timedelta(seconds=5),
)
REVERSAL = replace(
    POSTED,
    kind=TransferKind.REVERSAL,
    reversal_of_transfer_id=uuid.uuid4(),
    exchange_id=uuid.uuid4(),
    reversed_amount_minor=200,
    sequence=0,
)


def _by_keywords(transfer: Transfer, links: TransferLinks | None) -> ledger_transfers_pb2.Transfer:
    """The message as the constructor builds it (what ``transfer_out`` did before it filled in place)."""

    def money(amount_minor: int) -> money_pb2.Money:
        return money_pb2.Money(currency=transfer.currency, amount_minor=amount_minor)

    def stamp(moment: dt.datetime | None) -> object:
        return None if moment is None else timestamp_from_datetime(moment)

    message = ledger_transfers_pb2.Transfer(
        transfer_id=str(transfer.transfer_id),
        debit_account_id=str(transfer.debit_account_id),
        credit_account_id=str(transfer.credit_account_id),
        amount=money(transfer.amount_minor),
        kind=int(transfer.kind),  # type: ignore[arg-type]
        status=int(transfer.status),  # type: ignore[arg-type]
        reference=transfer.reference,
        posted_amount=money(transfer.posted_amount_minor),
        reversed_amount=money(transfer.reversed_amount_minor),
        reversal_of_transfer_id=str(transfer.reversal_of_transfer_id or ""),
        hold_expires_at=stamp(transfer.hold_expires_at),  # type: ignore[arg-type]
        void_reason=int(transfer.void_reason),  # type: ignore[arg-type]
        exchange_id=str(transfer.exchange_id or ""),
        batch_id=str(transfer.batch_id or ""),
        risk=wire.risk_out(transfer),
        created_by_principal_id=transfer.created_by_principal_id,
        sequence=transfer.sequence,
        created_at=stamp(transfer.created_at),  # type: ignore[arg-type]
        posted_at=stamp(transfer.posted_at),  # type: ignore[arg-type]
        finalized_at=stamp(transfer.finalized_at),  # type: ignore[arg-type]
    )
    if links is not None:
        message.invoice_id = str(links.invoice_id or "")
        message.card_id = str(links.card_id or "")
        message.approved_by_principal_id = links.approved_by_principal_id
    return message


@pytest.mark.parametrize("transfer", [POSTED, HELD, VOIDED, REVERSAL], ids=["posted", "held", "voided", "reversal"])
@pytest.mark.parametrize("links", [None, TransferLinks(uuid.uuid4(), uuid.uuid4(), "checker")], ids=["-", "links"])
def test_transfer_out_matches_the_keyword_constructor(transfer: Transfer, links: TransferLinks | None) -> None:
    expected = _by_keywords(transfer, links).SerializeToString(deterministic=True)
    assert wire.transfer_out(transfer, links).SerializeToString(deterministic=True) == expected


@pytest.mark.parametrize("transfer", [POSTED, HELD, VOIDED, REVERSAL], ids=["posted", "held", "voided", "reversal"])
def test_batch_result_carries_the_same_transfer(transfer: Transfer) -> None:
    result = wire.batch_result_out(BatchResult(7, transfer, None))
    expected = ledger_transfers_pb2.BatchTransferResult(index=7, transfer=_by_keywords(transfer, None))
    assert result.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
