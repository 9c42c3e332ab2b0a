"""Concurrent clients under a hypothesis state machine (issue 12): every step fires several operations at once —
transfers and holds out of the same accounts, a post racing a void of one hold, batches side by side, FX exchanges
— against the real server and database. The model is updated from what each call answered; after every step the
ledger must agree with it exactly (no lost update, no overdraft, no double finalization) and ``CheckInvariants``
must find the books intact in both currencies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from tests.support.soak import scaled
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_fx_pb2 as fx_pb
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as pb

pytestmark = pytest.mark.integration

T = TypeVar("T")
ACCOUNTS = 3
FUNDING_MINOR = 1_000
CALL_TIMEOUT_S = 60.0
EUR_JPY = "161.5"
Outcome = tuple[Any, ErrorDetails | None]


async def _outcome(call: Awaitable[Any]) -> Outcome:
    try:
        return await call, None
    except grpc.aio.AioRpcError as error:
        return None, ErrorDetails.from_rpc_error(error)


transfer_specs = st.lists(
    st.tuples(st.integers(0, ACCOUNTS - 1), st.integers(0, ACCOUNTS - 1), st.integers(1, 600), st.booleans()),
    min_size=2,
    max_size=8,
)


def make_machine(ledger: LedgerHarness, loop: asyncio.AbstractEventLoop) -> type[RuleBasedStateMachine]:
    def run_all(calls: list[Callable[[], Awaitable[Any]]]) -> list[Outcome]:
        """Starts every call at once on the server's loop and waits for all of them."""

        async def together() -> list[Outcome]:
            return list(await asyncio.gather(*(_outcome(call()) for call in calls)))

        return asyncio.run_coroutine_threadsafe(together(), loop).result(CALL_TIMEOUT_S)

    def run(call: Callable[[], Awaitable[T]]) -> T:
        async def invoke() -> T:
            return await call()

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(CALL_TIMEOUT_S)

    class ConcurrentLedger(RuleBasedStateMachine):
        @initialize()
        def open_accounts(self) -> None:
            self.org = str(uuid.uuid4())
            self.auth = ledger.auth(org=self.org)
            self.accounts = [run(lambda: ledger.open(org=self.org)) for _ in range(ACCOUNTS)]
            for account in self.accounts:
                run(lambda account=account: ledger.fund(account, FUNDING_MINOR, org=self.org))  # type: ignore[misc]
            self.posted = dict.fromkeys(self.accounts, FUNDING_MINOR)
            self.held = dict.fromkeys(self.accounts, 0)
            self.holds: dict[str, tuple[str, str, int]] = {}
            run(lambda: ledger.open("EUR", accounts_pb.ACCOUNT_KIND_FX_LIQUIDITY, org=self.org))
            run(lambda: ledger.open("JPY", accounts_pb.ACCOUNT_KIND_FX_LIQUIDITY, org=self.org))
            self.yen_wallet = run(lambda: ledger.open("JPY", org=self.org))
            self.yen = 0
            run(
                lambda: ledger.stub.SetFxRate(
                    fx_pb.SetFxRateRequest(
                        base_currency="EUR", quote_currency="JPY", rate=EUR_JPY, request_id=str(uuid.uuid4())
                    ),
                    metadata=self.auth,
                )
            )

        def _available(self, account: str) -> int:
            return self.posted[account] - self.held[account]

        def _apply(self, source: str, target: str, amount: int, pending: bool, transfer_id: str) -> None:
            if pending:
                self.held[source] += amount
                self.holds[transfer_id] = (source, target, amount)
            else:
                self.posted[source] -= amount
                self.posted[target] += amount

        @rule(specs=transfer_specs)
        def concurrent_transfers(self, specs: list[tuple[int, int, int, bool]]) -> None:
            requests = [
                pb.CreateTransferRequest(
                    transfer_id=str(uuid.uuid4()),
                    debit_account_id=self.accounts[debit],
                    credit_account_id=self.accounts[credit],
                    amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                    pending=pending,
                )
                for debit, credit, amount, pending in specs
                if debit != credit
            ]
            before = {account: self._available(account) for account in self.accounts}
            outcomes = run_all(
                [lambda r=r: ledger.stub.CreateTransfer(r, metadata=self.auth) for r in requests]  # type: ignore[misc]
            )
            for request, (reply, error) in zip(requests, outcomes, strict=True):
                if error is not None:
                    # The only acceptable refusal is a lack of funds at the moment it was decided.
                    assert error.reason == "INSUFFICIENT_FUNDS", error
                    assert request.amount.amount_minor > 0
                    continue
                assert reply is not None
                self._apply(
                    request.debit_account_id,
                    request.credit_account_id,
                    request.amount.amount_minor,
                    request.pending,
                    request.transfer_id,
                )
            for account in self.accounts:
                assert self._available(account) >= 0, "overdraft"
                spent = sum(
                    r.amount.amount_minor
                    for r, (_, e) in zip(requests, outcomes, strict=True)
                    if e is None and r.debit_account_id == account
                )
                for request, (_, error) in zip(requests, outcomes, strict=True):
                    if error is not None and request.debit_account_id == account:
                        # Even if every other debit went first and no credit arrived, there was not enough left.
                        assert request.amount.amount_minor > before[account] - spent, "refused though funded"

        @rule(data=st.data(), fraction=st.floats(0.1, 1.0))
        def race_post_and_void(self, data: st.DataObject, fraction: float) -> None:
            if not self.holds:
                return
            transfer_id = data.draw(st.sampled_from(sorted(self.holds)))
            source, target, amount = self.holds.pop(transfer_id)
            part = max(1, int(amount * fraction))
            post = pb.PostPendingTransferRequest(
                transfer_id=transfer_id,
                amount=money_pb2.Money(currency="EUR", amount_minor=part),
                request_id=str(uuid.uuid4()),
            )
            void = pb.VoidPendingTransferRequest(transfer_id=transfer_id, request_id=str(uuid.uuid4()))
            (_, post_error), (_, void_error) = run_all(
                [
                    lambda: ledger.stub.PostPendingTransfer(post, metadata=self.auth),
                    lambda: ledger.stub.VoidPendingTransfer(void, metadata=self.auth),
                ]
            )
            assert (post_error is None) != (void_error is None), "exactly one of a racing post and void must win"
            loser = post_error or void_error
            assert loser is not None
            assert loser.code == grpc.StatusCode.FAILED_PRECONDITION, loser
            self.held[source] -= amount
            if post_error is None:
                self.posted[source] -= part
                self.posted[target] += part

        @rule(
            batches=st.lists(
                st.tuples(st.booleans(), st.lists(st.integers(1, 300), min_size=1, max_size=4)),
                min_size=2,
                max_size=3,
            )
        )
        def concurrent_batches(self, batches: list[tuple[bool, list[int]]]) -> None:
            source, target = self.accounts[0], self.accounts[1]
            requests = [
                pb.CreateTransferBatchRequest(
                    batch_id=str(uuid.uuid4()),
                    atomic=atomic,
                    transfers=[
                        pb.BatchTransfer(
                            transfer_id=str(uuid.uuid4()),
                            debit_account_id=source,
                            credit_account_id=target,
                            amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                        )
                        for amount in amounts
                    ],
                )
                for atomic, amounts in batches
            ]
            outcomes = run_all(
                [lambda r=r: ledger.stub.CreateTransferBatch(r, metadata=self.auth) for r in requests]  # type: ignore[misc]
            )
            for request, (reply, error) in zip(requests, outcomes, strict=True):
                if error is not None:
                    assert request.atomic, error
                    assert error.reason == "BATCH_ITEM_FAILED", error
                    continue
                results = list(reply.results)
                if request.atomic:
                    assert all(result.HasField("transfer") for result in results)
                for item, result in zip(request.transfers, results, strict=True):
                    if result.HasField("transfer"):
                        self._apply(source, target, item.amount.amount_minor, False, item.transfer_id)

        @rule(sells=st.lists(st.integers(1, 400), min_size=2, max_size=4), payer=st.integers(0, ACCOUNTS - 1))
        def concurrent_exchanges(self, sells: list[int], payer: int) -> None:
            source = self.accounts[payer]
            quotes = []
            for sell in sells:
                quote_id = str(uuid.uuid4())
                run(
                    lambda quote_id=quote_id, sell=sell: ledger.stub.QuoteExchange(  # type: ignore[misc]
                        fx_pb.QuoteExchangeRequest(
                            quote_id=quote_id,
                            debit_account_id=source,
                            credit_account_id=self.yen_wallet,
                            sell_amount=money_pb2.Money(currency="EUR", amount_minor=sell),
                        ),
                        metadata=self.auth,
                    )
                )
                quotes.append(quote_id)
            outcomes = run_all(
                [
                    lambda q=q: ledger.stub.Exchange(  # type: ignore[misc]
                        fx_pb.ExchangeRequest(exchange_id=str(uuid.uuid4()), quote_id=q), metadata=self.auth
                    )
                    for q in quotes
                ]
            )
            for sell, (reply, error) in zip(sells, outcomes, strict=True):
                if error is not None:
                    assert error.reason == "INSUFFICIENT_FUNDS", error
                    continue
                self.posted[source] -= sell
                self.yen += reply.exchange.buy_amount.amount_minor

        @invariant()
        def ledger_matches_model_and_invariants_hold(self) -> None:
            for account in self.accounts:
                balance = run(lambda account=account: ledger.balance(account, org=self.org))  # type: ignore[misc]
                assert balance.available.amount_minor == self._available(account)
                assert balance.pending_debits_minor == self.held[account]
            yen = run(lambda: ledger.balance(self.yen_wallet, org=self.org))
            assert yen.posted_credits_minor == self.yen
            report = run(
                lambda: ledger.stub.CheckInvariants(integrity_pb.CheckInvariantsRequest(), metadata=self.auth)
            )
            assert report.intact, report.violations

    return ConcurrentLedger


async def test_concurrent_clients_keep_the_books_exact(ledger: LedgerHarness) -> None:
    machine = make_machine(ledger, asyncio.get_running_loop())
    machine.TestCase.settings = settings(
        max_examples=scaled(5, 60),
        stateful_step_count=scaled(10, 25),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=machine.TestCase.settings)
