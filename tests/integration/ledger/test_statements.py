"""Balances, statements with running balance, balance in the past, ListTransfers filters, and query plans that
stay O(page) over a large history (EXPLAIN ANALYZE: index scans reading about one page, no seq scan)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import pytest
from google.protobuf import timestamp_pb2

from services.ledger.store_transfers import STATEMENT_SQL, TransferFilter, list_transfers_query
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_statements_pb2 as pb
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration

HISTORY_ROWS = 30_000
PAGE = 50


def _stamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_statement_running_balance_pages_and_balance_at(ledger: LedgerHarness) -> None:
    account, other = await ledger.open(), await ledger.open()
    source = await ledger.fund(account, 1_000)
    await ledger.transfer(account, other, 100)
    async with ledger.app.runtime.pool.acquire() as connection:
        middle = await connection.fetchval("SELECT clock_timestamp()")
    await ledger.transfer(account, other, 50)
    await ledger.transfer(source, account, 5)
    lines: list[pb.StatementLine] = []
    token = ""
    while True:
        page = await ledger.stub.GetStatement(
            pb.GetStatementRequest(account_id=account, page_size=2, page_token=token), metadata=ledger.auth()
        )
        lines += page.lines
        token = page.next_page_token
        if not token:
            break
    assert [line.running_balance.amount_minor for line in lines] == [1_000, 900, 850, 855]
    assert [line.side for line in lines] == [
        pb.ENTRY_SIDE_CREDIT,
        pb.ENTRY_SIDE_DEBIT,
        pb.ENTRY_SIDE_DEBIT,
        pb.ENTRY_SIDE_CREDIT,
    ]
    bounded = await ledger.stub.GetStatement(
        pb.GetStatementRequest(account_id=account, start_time=_stamp(middle)), metadata=ledger.auth()
    )
    assert bounded.opening_balance.amount_minor == 900
    assert [line.amount.amount_minor for line in bounded.lines] == [50, 5]
    past = await ledger.stub.GetBalanceAt(
        pb.GetBalanceAtRequest(account_id=account, as_of=_stamp(middle)), metadata=ledger.auth()
    )
    assert past.balance.available.amount_minor == 900
    assert past.balance.posted_debits_minor == 100


async def _now(ledger: LedgerHarness) -> dt.datetime:
    async with ledger.app.runtime.pool.acquire() as connection:
        moment: dt.datetime = await connection.fetchval("SELECT clock_timestamp()")
        return moment


async def _balance_at(ledger: LedgerHarness, account: str, moment: dt.datetime) -> Any:
    reply = await ledger.stub.GetBalanceAt(
        pb.GetBalanceAtRequest(account_id=account, as_of=_stamp(moment)), metadata=ledger.auth()
    )
    return reply.balance


async def test_balance_at_counts_the_holds_open_at_that_instant(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    before_holds = await _now(ledger)
    kept = await ledger.transfer(payer, payee, 300, pending=True)
    voided = await ledger.transfer(payer, payee, 200, pending=True)
    both_open = await _now(ledger)
    await ledger.stub.VoidPendingTransfer(
        transfers_pb.VoidPendingTransferRequest(transfer_id=voided.transfer_id, request_id=str(uuid.uuid4())),
        metadata=ledger.auth(),
    )
    one_open = await _now(ledger)
    await ledger.stub.PostPendingTransfer(
        transfers_pb.PostPendingTransferRequest(
            transfer_id=kept.transfer_id,
            amount=money_pb2.Money(currency="EUR", amount_minor=120),
            request_id=str(uuid.uuid4()),
        ),
        metadata=ledger.auth(),
    )
    after = await _now(ledger)

    at = {
        name: await _balance_at(ledger, payer, moment)
        for name, moment in [("before", before_holds), ("both", both_open), ("one", one_open), ("after", after)]
    }
    assert [at[n].pending_debits_minor for n in ("before", "both", "one", "after")] == [0, 500, 300, 0]
    assert [at[n].posted_debits_minor for n in ("before", "both", "one", "after")] == [0, 0, 0, 120]
    assert [at[n].available.amount_minor for n in ("before", "both", "one", "after")] == [1_000, 500, 700, 880]
    credited = [await _balance_at(ledger, payee, m) for m in (before_holds, both_open, one_open, after)]
    assert [b.pending_credits_minor for b in credited] == [0, 500, 300, 0]
    # Now equals the account's own running totals.
    now = await ledger.balance(payer)
    assert (now.pending_debits_minor, now.posted_debits_minor) == (at["after"].pending_debits_minor, 120)


async def test_list_transfers_filters_and_pages_newest_first(ledger: LedgerHarness) -> None:
    account, other = await ledger.open(), await ledger.open()
    await ledger.fund(account, 1_000)
    made = [await ledger.transfer(account, other, n) for n in (1, 2, 3)]
    hold = await ledger.transfer(account, other, 4, pending=True)
    seen: list[str] = []
    token = ""
    while True:
        page = await ledger.stub.ListTransfers(
            transfers_pb.ListTransfersRequest(account_id=other, page_size=2, page_token=token), metadata=ledger.auth()
        )
        seen += [t.transfer_id for t in page.transfers]
        token = page.next_page_token
        if not token:
            break
    assert seen == [hold.transfer_id] + [t.transfer_id for t in reversed(made)]
    pending = await ledger.stub.ListTransfers(
        transfers_pb.ListTransfersRequest(account_id=account, status=transfers_pb.TRANSFER_STATUS_PENDING),
        metadata=ledger.auth(),
    )
    assert [t.transfer_id for t in pending.transfers] == [hold.transfer_id]


async def _explain(connection: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    raw = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _assert_o_page(plan: dict[str, Any]) -> None:
    nodes = _nodes(plan)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
    scans = [n for n in nodes if "Index" in n["Node Type"]]
    assert scans, plan
    for node in nodes:
        # Nothing reads or sorts more than a page or two of the history.
        assert node["Actual Rows"] * node.get("Actual Loops", 1) <= 2 * (PAGE + 1), node["Node Type"]


async def test_queries_are_o_page_over_a_large_history(ledger: LedgerHarness) -> None:
    org = uuid.uuid4()
    account, other = uuid.uuid4(), uuid.uuid4()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(
            """INSERT INTO transfers (organization_id, transfer_id, debit_account_id, credit_account_id, currency,
                   amount_minor, kind, status, reference, pending, hold_timeout_ms, posted_amount_minor,
                   created_by_principal_id, created_at, posted_at)
               SELECT $1, gen_random_uuid(), $2, $3, 'EUR', 1, 1, 2, '', false, 0, 1, 'bench',
                      $4::timestamptz + make_interval(secs => g), $4::timestamptz + make_interval(secs => g)
               FROM generate_series(1, $5) g""",
            org,
            account,
            other,
            start,
            HISTORY_ROWS,
        )
        await connection.execute(
            """INSERT INTO postings (organization_id, account_id, posted_at, account_seq, transfer_id, side,
                   amount_minor, counterparty_account_id, posted_debits_after, posted_credits_after, sequence)
               SELECT organization_id, debit_account_id, posted_at, row_number() OVER (ORDER BY created_at),
                      transfer_id, 1, 1, credit_account_id, row_number() OVER (ORDER BY created_at), 0, 0
               FROM transfers WHERE organization_id = $1""",
            org,
        )
        await connection.execute("ANALYZE transfers")
        await connection.execute("ANALYZE postings")
        middle = start + dt.timedelta(seconds=HISTORY_ROWS // 2)
        statement = await _explain(
            connection, STATEMENT_SQL, org, account, middle, start + dt.timedelta(days=365), middle, 0, PAGE + 1
        )
        _assert_o_page(statement)
        for filters in (
            TransferFilter(None, 0, 0, None, None, None, None),
            TransferFilter(account, 0, 0, None, None, None, None),
            TransferFilter(other, 0, 0, None, middle, None, None),
        ):
            sql, args = list_transfers_query(org, filters, (middle, uuid.UUID(int=0)), PAGE + 1)
            _assert_o_page(await _explain(connection, sql, *args))
