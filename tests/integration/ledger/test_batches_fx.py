"""Batches (atomic and not, replay, size limit) and exchanges through FX liquidity accounts."""

from __future__ import annotations

import uuid

import grpc
import pytest

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import errors_pb2, money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_fx_pb2 as fx_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as pb

pytestmark = pytest.mark.integration


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _item(debit: str, credit: str, amount_minor: int, currency: str = "EUR") -> pb.BatchTransfer:
    return pb.BatchTransfer(
        transfer_id=str(uuid.uuid4()),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
    )


async def test_atomic_batch_is_all_or_nothing_and_names_the_first_failing_item(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 100)
    request = pb.CreateTransferBatchRequest(
        batch_id=str(uuid.uuid4()),
        atomic=True,
        transfers=[_item(payer, payee, 60), _item(payer, payee, 60), _item(payer, payee, 1)],
    )
    details = await _error(ledger.stub.CreateTransferBatch(request, metadata=ledger.auth()))
    assert details.reason == "BATCH_ITEM_FAILED"
    assert details.metadata["index"] == "1"
    assert details.metadata["item_reason"] == "INSUFFICIENT_FUNDS"
    assert (await ledger.balance(payer)).posted_debits_minor == 0
    request.transfers.pop(1)
    done = await ledger.stub.CreateTransferBatch(request, metadata=ledger.auth())
    assert [r.transfer.status for r in done.results] == [pb.TRANSFER_STATUS_POSTED] * 2
    replay = await ledger.stub.CreateTransferBatch(request, metadata=ledger.auth())
    assert [r.transfer.transfer_id for r in replay.results] == [r.transfer.transfer_id for r in done.results]
    assert (await ledger.balance(payer)).posted_debits_minor == 61


async def test_non_atomic_batch_returns_one_result_per_item(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 100)
    request = pb.CreateTransferBatchRequest(
        batch_id=str(uuid.uuid4()),
        transfers=[_item(payer, payee, 60), _item(payer, payee, 60), _item(payer, payee, 40)],
    )
    response = await ledger.stub.CreateTransferBatch(request, metadata=ledger.auth())
    assert [r.index for r in response.results] == [0, 1, 2]
    assert response.results[1].error_reason == errors_pb2.ERROR_REASON_INSUFFICIENT_FUNDS
    assert response.results[1].error_metadata["available_minor"] == "40"
    assert response.results[2].transfer.status == pb.TRANSFER_STATUS_POSTED
    replay = await ledger.stub.CreateTransferBatch(request, metadata=ledger.auth())
    assert replay.results[1].error_reason == errors_pb2.ERROR_REASON_INSUFFICIENT_FUNDS
    assert (await ledger.balance(payer)).available.amount_minor == 0


async def test_batch_size_limit_and_bad_items(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    too_many = pb.CreateTransferBatchRequest(batch_id=str(uuid.uuid4()), transfers=[_item(payer, payee, 1)] * 1001)
    details = await _error(ledger.stub.CreateTransferBatch(too_many, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "transfers" in {v.field for v in details.field_violations}
    bad = pb.CreateTransferBatchRequest(
        batch_id=str(uuid.uuid4()), transfers=[_item(payer, payee, 1), _item(payer, payee, 0)]
    )
    details = await _error(ledger.stub.CreateTransferBatch(bad, metadata=ledger.auth()))
    assert {v.field for v in details.field_violations} == {"transfers[1].amount.amount_minor"}


async def test_exchange_through_liquidity_accounts_rounds_down_and_uses_a_quote_once(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    eur_pool = await ledger.open("EUR", accounts_pb.ACCOUNT_KIND_FX_LIQUIDITY, org=org)
    jpy_pool = await ledger.open("JPY", accounts_pb.ACCOUNT_KIND_FX_LIQUIDITY, org=org)
    customer = await ledger.open("EUR", org=org)
    yen_wallet = await ledger.open("JPY", org=org)
    await ledger.fund(customer, 10_000, org=org)
    await ledger.stub.SetFxRate(
        fx_pb.SetFxRateRequest(
            base_currency="EUR", quote_currency="JPY", rate="161.237", request_id=str(uuid.uuid4())
        ),
        metadata=ledger.auth(org=org),
    )
    got = await ledger.stub.GetFxRate(
        fx_pb.GetFxRateRequest(base_currency="EUR", quote_currency="JPY"), metadata=ledger.auth(org=org)
    )
    assert got.fx_rate.rate == "161.237"
    quote_id = str(uuid.uuid4())
    quoted = await ledger.stub.QuoteExchange(
        fx_pb.QuoteExchangeRequest(
            quote_id=quote_id,
            debit_account_id=customer,
            credit_account_id=yen_wallet,
            sell_amount=money_pb2.Money(currency="EUR", amount_minor=1_001),
        ),
        metadata=ledger.auth(org=org),
    )
    # 10.01 EUR x 161.237 = 1613.98237 JPY -> rounded down to 1613 yen (JPY has no minor unit).
    assert quoted.quote.buy_amount.amount_minor == 1_613
    exchange_id = str(uuid.uuid4())
    done = await ledger.stub.Exchange(
        fx_pb.ExchangeRequest(exchange_id=exchange_id, quote_id=quote_id), metadata=ledger.auth(org=org)
    )
    again = await ledger.stub.Exchange(
        fx_pb.ExchangeRequest(exchange_id=exchange_id, quote_id=quote_id), metadata=ledger.auth(org=org)
    )
    assert done.exchange.sell_transfer_id == again.exchange.sell_transfer_id
    used = await _error(
        ledger.stub.Exchange(
            fx_pb.ExchangeRequest(exchange_id=str(uuid.uuid4()), quote_id=quote_id), metadata=ledger.auth(org=org)
        )
    )
    assert used.reason == "FX_QUOTE_ALREADY_USED"
    assert (await ledger.balance(yen_wallet, org=org)).posted_credits_minor == 1_613
    assert (await ledger.balance(customer, org=org)).posted_debits_minor == 1_001
    assert (await ledger.balance(eur_pool, org=org)).posted_credits_minor == 1_001
    assert (await ledger.balance(jpy_pool, org=org)).posted_debits_minor == 1_613
    missing = await _error(
        ledger.stub.GetFxRate(
            fx_pb.GetFxRateRequest(base_currency="EUR", quote_currency="USD"), metadata=ledger.auth(org=org)
        )
    )
    assert missing.reason == "FX_RATE_UNAVAILABLE"
