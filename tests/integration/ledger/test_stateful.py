"""A hypothesis state machine drives random operations (transfers, holds, posts, voids, batches) against the real
server and database, and checks after every step that the ledger agrees with a simple model and that
CheckInvariants finds the books intact (Σ debits = Σ credits, balance rules, balances equal to postings, every
posted transfer in the chain)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as pb

pytestmark = pytest.mark.integration

T = TypeVar("T")
ACCOUNTS = 3
FUNDING_MINOR = 500
CALL_TIMEOUT_S = 30.0


def make_machine(ledger: LedgerHarness, loop: asyncio.AbstractEventLoop) -> type[RuleBasedStateMachine]:
    def run(call: Callable[[], Awaitable[T]]) -> T:
        """Runs ``call()`` on the server's loop (gRPC aio calls must be created there) and waits for it."""

        async def invoke() -> T:
            return await call()

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(CALL_TIMEOUT_S)

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def open_accounts(self) -> None:
            self.org = str(uuid.uuid4())
            self.accounts = [run(lambda: ledger.open(org=self.org)) for _ in range(ACCOUNTS)]
            self.posted: dict[str, int] = {}
            for account in self.accounts:
                run(lambda account=account: ledger.fund(account, FUNDING_MINOR, org=self.org))  # type: ignore[misc]
                self.posted[account] = FUNDING_MINOR
            self.held: dict[str, int] = dict.fromkeys(self.accounts, 0)
            self.holds: dict[str, tuple[str, str, int]] = {}

        def _available(self, account: str) -> int:
            return self.posted[account] - self.held[account]

        def _call(self, request: pb.CreateTransferRequest) -> pb.Transfer | None:
            try:
                return run(lambda: ledger.stub.CreateTransfer(request, metadata=ledger.auth(org=self.org))).transfer
            except grpc.aio.AioRpcError:
                return None

        @rule(
            debit=st.integers(0, ACCOUNTS - 1),
            credit=st.integers(0, ACCOUNTS - 1),
            amount=st.integers(1, 400),
            pending=st.booleans(),
        )
        def transfer(self, debit: int, credit: int, amount: int, pending: bool) -> None:
            if debit == credit:
                return
            source, target = self.accounts[debit], self.accounts[credit]
            transfer = self._call(
                pb.CreateTransferRequest(
                    transfer_id=str(uuid.uuid4()),
                    debit_account_id=source,
                    credit_account_id=target,
                    amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                    pending=pending,
                )
            )
            assert (transfer is not None) == (amount <= self._available(source))
            if transfer is None:
                return
            if pending:
                self.held[source] += amount
                self.holds[transfer.transfer_id] = (source, target, amount)
            else:
                self.posted[source] -= amount
                self.posted[target] += amount

        @rule(data=st.data(), post=st.booleans(), fraction=st.floats(0.1, 1.0))
        def finish_hold(self, data: st.DataObject, post: bool, fraction: float) -> None:
            if not self.holds:
                return
            transfer_id = data.draw(st.sampled_from(sorted(self.holds)))
            source, target, amount = self.holds.pop(transfer_id)
            self.held[source] -= amount
            metadata = ledger.auth(org=self.org)
            if post:
                part = max(1, int(amount * fraction))
                run(
                    lambda: ledger.stub.PostPendingTransfer(
                        pb.PostPendingTransferRequest(
                            transfer_id=transfer_id,
                            amount=money_pb2.Money(currency="EUR", amount_minor=part),
                            request_id=str(uuid.uuid4()),
                        ),
                        metadata=metadata,
                    )
                )
                self.posted[source] -= part
                self.posted[target] += part
            else:
                run(
                    lambda: ledger.stub.VoidPendingTransfer(
                        pb.VoidPendingTransferRequest(transfer_id=transfer_id, request_id=str(uuid.uuid4())),
                        metadata=metadata,
                    )
                )

        @rule(amounts=st.lists(st.integers(1, 200), min_size=1, max_size=4))
        def batch(self, amounts: list[int]) -> None:
            source, target = self.accounts[0], self.accounts[1]
            items = [
                pb.BatchTransfer(
                    transfer_id=str(uuid.uuid4()),
                    debit_account_id=source,
                    credit_account_id=target,
                    amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                )
                for amount in amounts
            ]
            response = run(
                lambda: ledger.stub.CreateTransferBatch(
                    pb.CreateTransferBatchRequest(batch_id=str(uuid.uuid4()), transfers=items),
                    metadata=ledger.auth(org=self.org),
                )
            )
            for amount, result in zip(amounts, response.results, strict=True):
                assert result.HasField("transfer") == (amount <= self._available(source))
                if result.HasField("transfer"):
                    self.posted[source] -= amount
                    self.posted[target] += amount

        @invariant()
        def ledger_matches_model_and_invariants_hold(self) -> None:
            for account in self.accounts:
                balance = run(lambda account=account: ledger.balance(account, org=self.org))  # type: ignore[misc]
                assert balance.available.amount_minor == self._available(account)
                assert balance.pending_debits_minor == self.held[account]
            report = run(
                lambda: ledger.stub.CheckInvariants(
                    integrity_pb.CheckInvariantsRequest(), metadata=ledger.auth(org=self.org)
                )
            )
            assert report.intact, report.violations

    return LedgerMachine


async def test_random_operations_keep_the_books_balanced(ledger: LedgerHarness) -> None:
    machine = make_machine(ledger, asyncio.get_running_loop())
    machine.TestCase.settings = settings(
        max_examples=6,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=machine.TestCase.settings)
