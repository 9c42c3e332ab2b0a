"""Transfer use cases: create (through group commit and the pre-commit gate), read, list, post and void holds,
batches, statements and balances in the past, and the expiry sweep."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, WalletError, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import (
    Clock,
    HoldItem,
    Outcome,
    TransferItem,
    commit_hold_transitions,
    commit_transfers,
)
from services.ledger.currencies import iso_currency
from services.ledger.domain_accounts import Account, Money
from services.ledger.domain_transfers import (
    HoldAction,
    HoldTransition,
    Transfer,
    TransferCommand,
    TransferStatus,
    VoidReason,
    parse_transfer,
)
from services.ledger.errors import AccountNotFound, BatchItemFailed, TransferNotFound, UnknownCurrency
from services.ledger.group_commit import GroupCommitter
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service import LedgerStore
from services.ledger.store_ports import ReversalReader
from services.ledger.store_transfer_links import TransferLinks
from services.ledger.store_transfers import TransferFilter


class PreCommitGate(Protocol):
    """The hook point the risk gate (``risk_gate.RiskGate``) plugs into: called for every new transfer before it is
    committed, outside any database transaction (it may call another service). Raise a WalletError to refuse (DENY,
    STEP_UP_REQUIRED, risk unavailable above the tier); return the command, possibly changed (the risk record; REVIEW
    turns it into a hold awaiting review)."""

    async def before_commit(self, caller: Caller, command: TransferCommand) -> TransferCommand: ...


class NoGate:
    """The risk gate switched off (``RISK_GATE=off``): every transfer proceeds unassessed."""

    async def before_commit(self, caller: Caller, command: TransferCommand) -> TransferCommand:
        return command


@dataclass(frozen=True, slots=True)
class TransferRequest:
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount: Money | None
    pending: bool
    hold_timeout_ms: int
    reference: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    index: int
    transfer: Transfer | None
    error: WalletError | None


class TransferService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: LedgerStore,
        clock: Clock,
        committer: GroupCommitter,
        gate: PreCommitGate,
    ) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._committer = committer
        self._gate = gate
        self._batch_turns: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    async def _validate(
        self, caller: Caller, request: TransferRequest, prefix: str = "", batch_id: uuid.UUID | None = None
    ) -> tuple[TransferCommand | None, list[FieldViolation]]:
        command, violations = parse_transfer(
            transfer_id=request.transfer_id,
            debit_account_id=request.debit_account_id,
            credit_account_id=request.credit_account_id,
            amount=request.amount,
            pending=request.pending,
            hold_timeout_ms=request.hold_timeout_ms,
            reference=request.reference,
            field_prefix=prefix,
            batch_id=batch_id,
        )
        return command, violations

    async def _check_currency(self, caller: Caller, currency: str, field: str) -> None:
        if iso_currency(currency) is not None:
            return  # no round trip for the common case
        async with self._pool.acquire() as connection:
            if await self._store.currency(connection, caller.organization_id, currency) is None:
                raise UnknownCurrency(field)

    async def create_transfer(self, caller: Caller, request: TransferRequest) -> Transfer:
        command, violations = await self._validate(caller, request)
        if violations:
            raise invalid(violations)
        assert command is not None
        await self._check_currency(caller, command.currency, "amount.currency")
        command = await self._gate.before_commit(caller, command)
        outcome = await self._committer.submit(TransferItem(caller, command))
        return _unwrap(outcome)

    async def get_transfer(self, caller: Caller, transfer_id: str) -> Transfer:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(transfer_id, "transfer_id", violations)
        if violations:
            raise invalid(violations)
        assert parsed is not None
        async with self._pool.acquire() as connection:
            transfer = await self._store.get_transfer(connection, caller.organization_id, parsed)
            if transfer is None or not await self._customer_may_see(connection, caller, transfer):
                raise TransferNotFound()
            shown = await with_reversed_amounts(connection, self._store, caller.organization_id, [transfer])
        return shown[0]

    async def links_of(self, caller: Caller, transfers: Sequence[Transfer]) -> dict[uuid.UUID, TransferLinks]:
        """The invoice, card and approver of transfers the caller has already read (GetTransfer, ListTransfers)."""
        async with self._pool.acquire() as connection:
            return await self._store.transfer_links(
                connection, caller.organization_id, [t.transfer_id for t in transfers]
            )

    async def _customer_may_see(self, connection: asyncpg.Connection, caller: Caller, transfer: Transfer) -> bool:
        if caller.customer_id is None:
            return True
        for account_id in (transfer.debit_account_id, transfer.credit_account_id):
            account = await self._store.get_account(connection, caller.organization_id, account_id)
            if account is not None and account.customer_id == caller.customer_id:
                return True
        return False

    async def list_transfers(
        self,
        caller: Caller,
        *,
        page_size: int,
        page_token: str,
        account_id: str,
        status: int,
        kind: int,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        batch_id: str,
    ) -> Page[Transfer]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        account = parse_uuid(account_id, "account_id", violations, required=False)
        batch = parse_uuid(batch_id, "batch_id", violations, required=False)
        if status and status not in TransferStatus._value2member_map_:
            violations.append(FieldViolation("status", "is not a known status"))
        if violations:
            raise invalid(violations)
        if caller.customer_id is not None:
            # Customers list per account, and only their own.
            if account is None:
                raise invalid([FieldViolation("account_id", "is required for customers")])
            await self._visible_account(caller, account)
        filters = TransferFilter(account, status, kind, start_time, end_time, batch, None)
        filter_key = {
            "a": str(account or ""),
            "s": status,
            "k": kind,
            "from": str(start_time),
            "to": str(end_time),
            "b": str(batch or ""),
        }
        cursor = paging.decode_page_token(page_token, filter_key)
        before = None
        if cursor is not None:
            before_id = cursor_uuid(cursor, "i")
            assert before_id is not None
            before = (dt.datetime.fromisoformat(str(cursor["t"])), before_id)
        async with self._pool.acquire() as connection:
            rows = await self._store.list_transfers(connection, caller.organization_id, filters, before, size + 1)
            rows = await with_reversed_amounts(connection, self._store, caller.organization_id, rows)
        page, token = paging.next_page(
            rows, size, lambda last: {"t": last.created_at.isoformat(), "i": str(last.transfer_id)}, filter_key
        )
        return Page(page, token)

    async def _visible_account(self, caller: Caller, account_id: uuid.UUID) -> Account:
        async with self._pool.acquire() as connection:
            account = await self._store.get_account(connection, caller.organization_id, account_id)
        if account is None or not caller.may_see(account.customer_id):
            raise AccountNotFound()
        return account

    async def finalize(
        self, caller: Caller, *, transfer_id: str, request_id: str, action: HoldAction, amount: Money | None = None
    ) -> Transfer:
        """PostPendingTransfer and VoidPendingTransfer."""
        violations: list[FieldViolation] = []
        parsed = parse_uuid(transfer_id, "transfer_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if amount is not None and amount.amount_minor <= 0:
            violations.append(FieldViolation("amount.amount_minor", "must be positive"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert request is not None
        transition = HoldTransition(
            action=action,
            post_amount_minor=amount.amount_minor if amount is not None else None,
            void_reason=VoidReason.CLIENT_VOIDED,
            request_id=request,
        )
        if amount is not None:
            existing = await self.get_transfer(caller, transfer_id)
            if existing.currency != amount.currency:
                raise invalid([FieldViolation("amount.currency", f"must be the hold's currency {existing.currency}")])
        async with transaction(self._pool) as connection:
            outcomes = await commit_hold_transitions(
                connection, self._store, [HoldItem(caller, parsed, transition)], self._clock
            )
        return _unwrap(outcomes[0])

    async def resolve_transfer_review(
        self, caller: Caller, *, transfer_id: str, case_id: str, approve: bool | None, request_id: str
    ) -> Transfer:
        """ResolveTransferReview: risk's resolved case posts (approve) or voids (reject) the hold it kept in
        AWAITING_REVIEW. The case must be the one recorded on the transfer; the request id makes it idempotent."""
        violations: list[FieldViolation] = []
        parsed = parse_uuid(transfer_id, "transfer_id", violations)
        case = parse_uuid(case_id, "case_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if approve is None:
            violations.append(FieldViolation("outcome", "must be APPROVE or REJECT"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert request is not None
        transition = HoldTransition(
            action=HoldAction.POST if approve else HoldAction.VOID,
            void_reason=VoidReason.REVIEW_REJECTED,
            request_id=request,
            review_case_id=case,
        )
        async with transaction(self._pool) as connection:
            outcomes = await commit_hold_transitions(
                connection, self._store, [HoldItem(caller, parsed, transition)], self._clock
            )
        return _unwrap(outcomes[0])

    async def expire_due_holds(self, now: dt.datetime) -> int:
        """One sweep: expires up to EXPIRY_SWEEP_BATCH_MAX holds whose time has come. A hold posted or voided
        concurrently is skipped (HOLD_NOT_PENDING under the lock), so each hold is finalized exactly once."""
        async with transaction(self._pool) as connection:
            due = await self._store.due_holds(connection, now, limits.EXPIRY_SWEEP_BATCH_MAX)
            if not due:
                return 0
            items = [
                HoldItem(Caller(org, "ledger-expiry-sweeper", None), transfer_id, HoldTransition(HoldAction.EXPIRE))
                for org, transfer_id in due
            ]
            outcomes = await commit_hold_transitions(connection, self._store, items, self._clock)
        return sum(1 for outcome in outcomes if outcome.error is None)

    async def due_hold_backlog(self, now: dt.datetime) -> int:
        """Holds whose expiry has passed but the sweeper has not finalized yet (at most HOLD_BACKLOG_COUNT_MAX)."""
        async with self._pool.acquire() as connection:
            return await self._store.count_due_holds(connection, now, limits.HOLD_BACKLOG_COUNT_MAX)

    async def create_batch(
        self, caller: Caller, *, batch_id: str, requests: Sequence[TransferRequest], atomic: bool
    ) -> list[BatchResult]:
        violations: list[FieldViolation] = []
        batch = parse_uuid(batch_id, "batch_id", violations)
        if not requests:
            violations.append(FieldViolation("transfers", "must hold at least one transfer"))
        if len(requests) > limits.BATCH_TRANSFERS_MAX:
            violations.append(
                FieldViolation("transfers", f"must hold at most {limits.BATCH_TRANSFERS_MAX} transfers")
            )
        commands: list[TransferCommand] = []
        for index, request in enumerate(requests[: limits.BATCH_TRANSFERS_MAX]):
            command, item_violations = await self._validate(
                caller, request, prefix=f"transfers[{index}].", batch_id=batch
            )
            violations += item_violations
            if command is not None:
                commands.append(command)
        if violations:
            raise invalid(violations)
        assert batch is not None
        assert all(c.batch_id == batch for c in commands)
        # A batch the client stops waiting for still finishes (or fails) as a whole, like a group-committed
        # transfer: replaying the batch id then returns what happened.
        return await asyncio.shield(self._commit_batch_in_turn(caller, batch, commands, atomic))

    async def _commit_batch_in_turn(
        self, caller: Caller, batch: uuid.UUID, commands: list[TransferCommand], atomic: bool
    ) -> list[BatchResult]:
        # A tenant's commits serialize on its chain head anyway. Queueing this process's batches of one tenant here
        # (first come, first served) instead of inside Postgres, each holding a connection and hundreds of row
        # locks, avoids lock convoys in which one batch can wait for seconds.
        turn = self._batch_turns.setdefault(caller.organization_id, asyncio.Lock())
        async with turn:
            return await self._commit_batch(caller, batch, commands, atomic)

    async def _commit_batch(
        self, caller: Caller, batch: uuid.UUID, commands: list[TransferCommand], atomic: bool
    ) -> list[BatchResult]:
        fingerprint = _batch_fingerprint(commands, atomic)
        # Every item is assessed at once, before the transaction (no row lock waits for risk); a refused item is
        # that item's failure, not the batch's. A replayed batch returns its stored results whatever risk says now.
        checked = await asyncio.gather(*(_gated(self._gate, caller, c) for c in commands))
        async with transaction(self._pool) as connection:
            await self._store.prefer_generic_plans(connection, local=True)
            stored = await self._store.find_batch(connection, caller.organization_id, batch)
            if stored is not None:
                return await self._replay_batch(connection, caller, stored, fingerprint)
            for currency in sorted({c.currency for c in commands}):
                if await self._store.currency(connection, caller.organization_id, currency) is None:
                    raise UnknownCurrency("transfers.amount.currency")
            passed = [(i, c) for i, c in enumerate(checked) if isinstance(c, TransferCommand)]
            outcomes = await commit_transfers(
                connection, self._store, [TransferItem(caller, c) for _, c in passed], self._clock
            )
            committed = {i: o for (i, _), o in zip(passed, outcomes, strict=True)}
            results = [
                BatchResult(i, committed[i].transfer, committed[i].error)
                if i in committed
                else BatchResult(i, None, _refused(checked[i]))
                for i in range(len(checked))
            ]
            if atomic:
                for result in results:
                    if result.error is not None:
                        raise BatchItemFailed(result.index, result.error.reason, result.error.message)
            await self._store.insert_batch(
                connection, caller.organization_id, batch, fingerprint, _batch_record(results), self._clock()
            )
        return results

    async def _replay_batch(
        self,
        connection: asyncpg.Connection,
        caller: Caller,
        stored: tuple[str, list[dict[str, str]]],
        fingerprint: str,
    ) -> list[BatchResult]:
        stored_fingerprint, records = stored
        if stored_fingerprint != fingerprint:
            raise IdempotencyKeyReused("batch_id", "transfers")
        ids = [(caller.organization_id, uuid.UUID(r["transfer_id"])) for r in records if r.get("transfer_id")]
        transfers = await self._store.find_transfers(connection, ids)
        results: list[BatchResult] = []
        for index, record in enumerate(records):
            if record.get("transfer_id"):
                results.append(
                    BatchResult(index, transfers[(caller.organization_id, uuid.UUID(record["transfer_id"]))], None)
                )
            else:
                results.append(
                    BatchResult(
                        index, None, _StoredError(record["reason"], record["message"], record.get("metadata", ""))
                    )
                )
        return results


async def with_reversed_amounts(
    connection: asyncpg.Connection, store: ReversalReader, organization_id: uuid.UUID, transfers: Sequence[Transfer]
) -> list[Transfer]:
    """The transfers with ``reversed_amount_minor`` derived from their posted reversals (one query for a page; only
    posted transfers can have any)."""
    posted = [t.transfer_id for t in transfers if t.status is TransferStatus.POSTED]
    totals = await store.reversal_totals(connection, organization_id, posted)
    return [
        replace(t, reversed_amount_minor=totals[t.transfer_id].reversed_minor) if t.transfer_id in totals else t
        for t in transfers
    ]


async def _gated(gate: PreCommitGate, caller: Caller, command: TransferCommand) -> TransferCommand | WalletError:
    try:
        return await gate.before_commit(caller, command)
    except WalletError as err:
        return err


def _refused(checked: TransferCommand | WalletError) -> WalletError:
    assert isinstance(checked, WalletError)
    return checked


class _StoredError(WalletError):
    """A batch item's failure as it was recorded (replays return the original results)."""

    def __init__(self, reason: str, message: str, metadata: str) -> None:
        super().__init__(message, metadata=json.loads(metadata) if metadata else {})
        self.stored_reason = reason


def error_reason(error: WalletError) -> str:
    return error.stored_reason if isinstance(error, _StoredError) else error.reason


def _unwrap(outcome: Outcome) -> Transfer:
    if outcome.error is not None:
        raise outcome.error
    assert outcome.transfer is not None
    return outcome.transfer


def _batch_fingerprint(commands: Sequence[TransferCommand], atomic: bool) -> str:
    body = [atomic] + [
        [
            str(c.transfer_id),
            str(c.debit_account_id),
            str(c.credit_account_id),
            c.currency,
            c.amount_minor,
            c.pending,
            c.hold_timeout_ms,
            c.reference,
        ]
        for c in commands
    ]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _batch_record(results: Sequence[BatchResult]) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    for result in results:
        if result.error is None:
            assert result.transfer is not None
            records.append({"transfer_id": str(result.transfer.transfer_id)})
        else:
            records.append(
                {
                    "reason": result.error.reason,
                    "message": result.error.message,
                    "metadata": json.dumps(result.error.metadata),
                }
            )
    return records
