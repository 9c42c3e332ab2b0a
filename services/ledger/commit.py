"""Applying transfers and hold transitions inside one database transaction: lock, decide, write.

Used by every writer (group commit of single transfers, batches, exchanges, the expiry sweeper, post/void), so the
rules and the lock order are the same everywhere:

1. lock every account involved, ordered by (organization_id, account_id) — no deadlocks between writers;
2. read the transfers involved (idempotency, hold state) under those locks;
3. decide each item with the pure domain rules against the in-memory account states, in order, so one declined
   item does not fail its neighbours and later items see earlier items' effects;
4. lock each tenant's chain head (last, so it is held for the shortest time), chain the entries;
5. write everything with array parameters: one statement for the whole group (``store_commit.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import asyncpg

from services.kit.errors import IdempotencyKeyReused, WalletError
from services.kit.telemetry import current_traceparent
from services.ledger.caller import Caller
from services.ledger.chain import ChainEntry, link
from services.ledger.domain_accounts import Account
from services.ledger.domain_transfers import (
    Applied,
    HoldAction,
    HoldTransition,
    Posting,
    Transfer,
    TransferCommand,
    TransferStatus,
    apply_transfer,
    finalize_hold,
    first_difference,
)
from services.ledger.errors import AccountNotFound, TransferNotFound
from services.ledger.events import outbox_row, transfer_event
from services.ledger.records import evolve
from services.ledger.store_accounts import AccountKey
from services.ledger.store_chain import ChainHead, OutboxRow
from services.ledger.store_commit import GroupWrite

Clock = Callable[[], dt.datetime]


class CommitStore(Protocol):
    async def lock_accounts(
        self, connection: asyncpg.Connection, keys: Sequence[AccountKey]
    ) -> dict[AccountKey, Account]: ...
    async def find_transfers(
        self, connection: asyncpg.Connection, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], Transfer]: ...
    async def get_transfer(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        transfer_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> Transfer | None: ...
    async def lock_heads(
        self, connection: asyncpg.Connection, organization_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChainHead]: ...
    async def write_group(self, connection: asyncpg.Connection, write: GroupWrite) -> None: ...
    async def prefer_generic_plans(self, connection: asyncpg.Connection, *, local: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class TransferItem:
    caller: Caller
    command: TransferCommand


@dataclass(frozen=True, slots=True)
class HoldItem:
    caller: Caller
    transfer_id: uuid.UUID
    transition: HoldTransition


@dataclass(frozen=True, slots=True)
class Outcome:
    """One item's result: the transfer (new, replayed or finalized) or the error that declined it."""

    transfer: Transfer | None = None
    error: WalletError | None = None
    replayed: bool = False


@dataclass(slots=True)
class _Work:
    accounts: dict[AccountKey, Account]
    changed: set[AccountKey] = field(default_factory=set)
    applied: list[Applied] = field(default_factory=list)
    new_transfer_ids: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)


async def commit_transfers(
    connection: asyncpg.Connection, store: CommitStore, items: Sequence[TransferItem], clock: Clock
) -> list[Outcome]:
    keys: list[AccountKey] = []
    for item in items:
        org = item.caller.organization_id
        keys += [(org, item.command.debit_account_id), (org, item.command.credit_account_id)]
    work = _Work(await store.lock_accounts(connection, keys))
    existing = await store.find_transfers(
        connection, [(i.caller.organization_id, i.command.transfer_id) for i in items]
    )
    now = clock()
    outcomes: list[Outcome] = []
    in_group: dict[tuple[uuid.UUID, uuid.UUID], Transfer] = {}
    for item in items:
        key = (item.caller.organization_id, item.command.transfer_id)
        earlier = existing.get(key) or in_group.get(key)
        if earlier is not None:
            outcomes.append(_replay(item, earlier))
            continue
        try:
            applied = _apply_one(work, item, now)
        except WalletError as err:
            outcomes.append(Outcome(error=err))
            continue
        in_group[key] = applied.transfer
        work.new_transfer_ids.add(key)
        outcomes.append(Outcome(transfer=applied.transfer))
    written = await _persist(connection, store, work, now)
    return [_final(o, written) for o in outcomes]


def _final(outcome: Outcome, written: dict[tuple[uuid.UUID, uuid.UUID], Transfer]) -> Outcome:
    """The outcome with the transfer as written (with its chain sequence)."""
    transfer = outcome.transfer
    if transfer is None or outcome.replayed:
        return outcome
    return Outcome(transfer=written.get((transfer.organization_id, transfer.transfer_id), transfer))


def _replay(item: TransferItem, earlier: Transfer) -> Outcome:
    difference = first_difference(item.command, earlier)
    if difference is not None:
        return Outcome(error=IdempotencyKeyReused("transfer_id", difference))
    if item.command.batch_id != earlier.batch_id and item.command.batch_id is not None:
        return Outcome(error=IdempotencyKeyReused("transfer_id", "batch_id"))
    return Outcome(transfer=earlier, replayed=True)


def _apply_one(work: _Work, item: TransferItem, now: dt.datetime) -> Applied:
    org = item.caller.organization_id
    command = item.command
    debit = work.accounts.get((org, command.debit_account_id))
    if debit is None or not item.caller.may_see(debit.customer_id):
        raise AccountNotFound("debit_account_id")
    credit = work.accounts.get((org, command.credit_account_id))
    if credit is None:
        raise AccountNotFound("credit_account_id")
    applied = apply_transfer(org, command, debit, credit, created_by=item.caller.principal_id, now=now)
    _record(work, applied)
    return applied


def _record(work: _Work, applied: Applied) -> None:
    for account in (applied.debit, applied.credit):
        key = (account.organization_id, account.account_id)
        work.accounts[key] = account
        work.changed.add(key)
    work.applied.append(applied)


async def commit_hold_transitions(
    connection: asyncpg.Connection, store: CommitStore, items: Sequence[HoldItem], clock: Clock
) -> list[Outcome]:
    """Posts, voids or expires holds. Of two concurrent transitions of one hold exactly one wins: both lock the
    hold's accounts first, and the loser re-reads a finalized transfer under the lock."""
    unlocked = await store.find_transfers(connection, [(i.caller.organization_id, i.transfer_id) for i in items])
    keys: list[AccountKey] = []
    for transfer in unlocked.values():
        keys += [
            (transfer.organization_id, transfer.debit_account_id),
            (transfer.organization_id, transfer.credit_account_id),
        ]
    work = _Work(await store.lock_accounts(connection, keys))
    current = await store.find_transfers(connection, list(unlocked))
    now = clock()
    outcomes: list[Outcome] = []
    for item in items:
        key = (item.caller.organization_id, item.transfer_id)
        latest = _latest(work, key) or current.get(key)
        try:
            outcomes.append(_transition_one(work, item, latest, now))
        except WalletError as err:
            outcomes.append(Outcome(error=err))
    written = await _persist(connection, store, work, now)
    return [_final(o, written) for o in outcomes]


def _latest(work: _Work, key: tuple[uuid.UUID, uuid.UUID]) -> Transfer | None:
    for applied in reversed(work.applied):
        if (applied.transfer.organization_id, applied.transfer.transfer_id) == key:
            return applied.transfer
    return None


def _transition_one(work: _Work, item: HoldItem, transfer: Transfer | None, now: dt.datetime) -> Outcome:
    org = item.caller.organization_id
    if transfer is None:
        raise TransferNotFound()
    debit = work.accounts[(org, transfer.debit_account_id)]
    credit = work.accounts[(org, transfer.credit_account_id)]
    if not item.caller.may_see(debit.customer_id):
        # A customer may post or void only holds on its own money (the payee cannot capture the payer's hold).
        raise TransferNotFound()
    request_id = item.transition.request_id
    if request_id is not None and transfer.finalize_request_id == request_id:
        difference = _transition_difference(item.transition, transfer)
        if difference is not None:
            raise IdempotencyKeyReused("request_id", difference)
        return Outcome(transfer=transfer, replayed=True)
    applied = finalize_hold(transfer, debit, credit, item.transition, now)
    _record(work, applied)
    return Outcome(transfer=applied.transfer)


def _transition_difference(transition: HoldTransition, transfer: Transfer) -> str | None:
    """What a replayed post or void asks differently from the transition that request id made."""
    posted = transfer.status is TransferStatus.POSTED
    if (transition.action is HoldAction.POST) != posted:
        return "action"
    if posted and transition.post_amount_minor not in (None, transfer.posted_amount_minor):
        return "amount"
    return None


async def _persist(
    connection: asyncpg.Connection, store: CommitStore, work: _Work, now: dt.datetime
) -> dict[tuple[uuid.UUID, uuid.UUID], Transfer]:
    """Chains and writes what the group decided; returns the final state of each written transfer."""
    if not work.applied:
        return {}
    heads = await store.lock_heads(connection, [a.transfer.organization_id for a in work.applied])
    tips = {org: (head.last_sequence, head.last_hash) for org, head in heads.items()}
    entries: list[ChainEntry] = []
    final: dict[tuple[uuid.UUID, uuid.UUID], Transfer] = {}
    postings: list[Posting] = []
    posting_sequences: list[int] = []
    events: list[OutboxRow] = []
    traceparent = current_traceparent()  # once per group, not per event
    for applied in work.applied:
        t = applied.transfer
        last_sequence, last_hash = tips[t.organization_id]
        sequence = last_sequence + 1
        entry = link(
            ChainEntry(
                organization_id=t.organization_id,
                sequence=sequence,
                kind=int(applied.entry_kind),
                transfer_id=t.transfer_id,
                debit_account_id=t.debit_account_id,
                credit_account_id=t.credit_account_id,
                currency=t.currency,
                amount_minor=t.posted_amount_minor or t.amount_minor,
                occurred_at=now,
            ),
            last_hash,
        )
        tips[t.organization_id] = (sequence, entry.entry_hash)
        entries.append(entry)
        sequenced = evolve(t, sequence=sequence)
        final[(t.organization_id, t.transfer_id)] = sequenced
        postings += applied.postings
        posting_sequences += [sequence] * len(applied.postings)
        payload = transfer_event(sequenced, applied.debit, applied.credit, applied.entry_kind)
        events.append(outbox_row(t.organization_id, t.debit_account_id, payload, now, traceparent=traceparent))
    moved = [replace(head, last_sequence=tips[org][0], last_hash=tips[org][1]) for org, head in heads.items()]
    await store.write_group(
        connection,
        GroupWrite(
            inserted=[t for key, t in final.items() if key in work.new_transfer_ids],
            finalized=[t for key, t in final.items() if key not in work.new_transfer_ids],
            postings=postings,
            posting_sequences=posting_sequences,
            accounts=[work.accounts[k] for k in sorted(work.changed)],
            entries=entries,
            heads=moved,
            events=events,
        ),
    )
    return final
