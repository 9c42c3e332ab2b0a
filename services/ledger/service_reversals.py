"""ReverseTransfer: a new transfer from the original's credit account back to its debit account, linked to it.

The reversal transfer passes the same pre-commit gate as any transfer (risk, then maker-checker; outside any
transaction) and commits through ``commit.commit_transfers`` (balance rules, frozen accounts, limits, hash chain,
outbox). Its transaction first locks the original's row (``FOR UPDATE``): concurrent reversals of one original
serialize there and each re-reads what is left under the lock, so together they never exceed it. Lock order:
original transfer → accounts → chain head. No other writer locks a POSTED transfer's row (hold transitions only
touch holds), so the order cannot deadlock.

The transfer, the reversal record (reason, complaint, requested amount) and the audit event are written in that one
transaction; a replay of the transfer id (also after a crash between commit and reply) returns what was committed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit.db import transaction
from services.kit.errors import IdempotencyKeyReused
from services.ledger import domain_reversals as reversals
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore, TransferItem, commit_transfers
from services.ledger.domain_accounts import Money
from services.ledger.domain_reversals import ReversalCommand, ReversalRecord, ReversalTotals
from services.ledger.domain_transfers import Transfer, TransferCommand
from services.ledger.errors import TransferNotFound
from services.ledger.service import record_audit
from services.ledger.service_transfers import PreCommitGate, with_reversed_amounts
from services.ledger.store_ports import AccountReader, AuditWriter, ReversalReader

AUDIT_METHOD = "ReverseTransfer"


class ReversalStorePort(CommitStore, AccountReader, AuditWriter, ReversalReader, Protocol):
    async def reversal_totals_of(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, original_id: uuid.UUID
    ) -> ReversalTotals: ...
    async def insert_reversal(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ReversalRecord, now: dt.datetime
    ) -> None: ...
    async def get_reversal(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> ReversalRecord | None: ...


@dataclass(frozen=True, slots=True)
class ReversalRequest:
    transfer_id: str
    original_transfer_id: str
    amount: Money | None
    reason: int
    complaint_id: str
    reference: str


@dataclass(frozen=True, slots=True)
class Reversal:
    """The reversal transfer and the original with its updated ``reversed_amount_minor``."""

    transfer: Transfer
    original: Transfer


class ReversalService:
    def __init__(self, pool: asyncpg.Pool, store: ReversalStorePort, clock: Clock, gate: PreCommitGate) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._gate = gate

    async def reverse_transfer(self, caller: Caller, request: ReversalRequest) -> Reversal:
        command = reversals.parse_reversal(
            transfer_id=request.transfer_id,
            original_transfer_id=request.original_transfer_id,
            amount=request.amount,
            reason=request.reason,
            complaint_id=request.complaint_id,
            reference=request.reference,
        )
        org = caller.organization_id
        async with self._pool.acquire() as connection:
            if await self._store.get_transfer(connection, org, command.transfer_id) is not None:
                # A replay skips the gate: the reversal exists already and is returned as it is.
                return await self._replay(connection, caller, command)
            original = await self._visible_original(connection, caller, command.original_transfer_id)
            totals = await self._store.reversal_totals_of(connection, org, original.transfer_id)
        amount_minor = reversals.reversal_amount(command, original, totals)
        transfer = reversals.reversal_transfer(command, original, amount_minor)
        transfer = await self._gate.before_commit(caller, transfer)
        for attempt in range(limits.GROUP_COMMIT_ATTEMPTS_MAX):
            try:
                return await self._commit(caller, command, transfer)
            except asyncpg.UniqueViolationError:
                # A concurrent call with the same transfer id committed first; the next attempt replays it.
                if attempt + 1 == limits.GROUP_COMMIT_ATTEMPTS_MAX:
                    raise
        raise AssertionError("unreachable")

    async def _commit(self, caller: Caller, command: ReversalCommand, transfer: TransferCommand) -> Reversal:
        org = caller.organization_id
        async with transaction(self._pool) as connection:
            original = await self._store.get_transfer(connection, org, command.original_transfer_id, lock=True)
            assert original is not None, "a transfer is never deleted"
            if await self._store.get_transfer(connection, org, command.transfer_id) is not None:
                return await self._replay(connection, caller, command)
            totals = await self._store.reversal_totals_of(connection, org, original.transfer_id)
            reversals.ensure_still_left(original, totals, transfer.amount_minor)
            outcomes = await commit_transfers(connection, self._store, [TransferItem(caller, transfer)], self._clock)
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
            assert not outcome.replayed, "the transfer id was free under the original's lock"
            now = self._clock()
            record = reversals.record_of(command)
            await self._store.insert_reversal(connection, org, record, now)
            await record_audit(
                self._store,
                connection,
                caller,
                AUDIT_METHOD,
                str(original.transfer_id),
                str(command.transfer_id),
                _audit_details(record, outcome.transfer),
                now,
            )
            shown = await with_reversed_amounts(connection, self._store, org, [outcome.transfer, original])
        return Reversal(shown[0], shown[1])

    async def _replay(self, connection: asyncpg.Connection, caller: Caller, command: ReversalCommand) -> Reversal:
        org = caller.organization_id
        stored = await self._store.get_transfer(connection, org, command.transfer_id)
        assert stored is not None
        record = await self._store.get_reversal(connection, org, command.transfer_id)
        difference = reversals.replay_difference(command, record, stored)
        if difference is not None:
            raise IdempotencyKeyReused("transfer_id", difference)
        original = await self._visible_original(connection, caller, command.original_transfer_id)
        shown = await with_reversed_amounts(connection, self._store, org, [stored, original])
        return Reversal(shown[0], shown[1])

    async def _visible_original(
        self, connection: asyncpg.Connection, caller: Caller, original_id: uuid.UUID
    ) -> Transfer:
        original = await self._store.get_transfer(connection, caller.organization_id, original_id)
        if original is None:
            raise TransferNotFound()
        if caller.customer_id is not None:
            # Not reachable through the policy (no customer role holds ledger.reversals.write); kept as a backstop.
            debit = await self._store.get_account(connection, caller.organization_id, original.debit_account_id)
            if debit is None or not caller.may_see(debit.customer_id):
                raise TransferNotFound()
        return original


def _audit_details(record: ReversalRecord, transfer: Transfer) -> dict[str, str]:
    return {
        "reversal_transfer_id": str(record.transfer_id),
        "reason": record.reason.name,
        "complaint_id": str(record.complaint_id or ""),
        "amount_minor": str(transfer.amount_minor),
        "currency": transfer.currency,
        "status": transfer.status.name,
    }
