"""Maker-checker use cases: SetApprovalPolicy, GetApprovalPolicy, ApproveTransfer, RejectTransfer,
ListPendingApprovals, the approval-expiry sweep, and ``ApprovalGate``, the pre-commit gate that turns transfers
above the policy's threshold into holds awaiting approval.

Decisions go through the hold state machine (``domain_transfers.finalize_hold`` with ``approval=True``, applied by
``commit.commit_hold_transitions`` under the accounts' row locks), so of a concurrent approve, reject and expiry of
one transfer exactly one wins. Policy changes and decisions are audited in the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.ledger import domain_approvals as approvals
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore, HoldItem, commit_hold_transitions
from services.ledger.domain_approvals import (
    EMPTY_POLICY,
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRuleInput,
)
from services.ledger.domain_transfers import HoldAction, HoldTransition, Transfer, TransferCommand, VoidReason
from services.ledger.errors import HoldNotPending, TransferNotFound
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service import record_audit
from services.ledger.service_transfers import PreCommitGate
from services.ledger.store_accounts import ClaimedRequest
from services.ledger.store_approvals import ApprovalRecord
from services.ledger.store_ports import AccountReader, AuditWriter, RequestClaims

EXPIRY_SWEEPER_PRINCIPAL = "ledger-expiry-sweeper"


class ApprovalStorePort(CommitStore, AccountReader, RequestClaims, AuditWriter, Protocol):
    async def get_approval_policy(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID
    ) -> ApprovalPolicy | None: ...
    async def save_approval_policy(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, policy: ApprovalPolicy
    ) -> None: ...
    async def get_approval(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> ApprovalRecord | None: ...
    async def insert_approval(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ApprovalRecord
    ) -> None: ...
    async def list_pending_approvals(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        account_id: uuid.UUID | None,
        exclude_principal_id: str,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Transfer]: ...
    async def due_approval_holds(
        self, connection: asyncpg.Connection, now: dt.datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID]]: ...


class PolicyCache:
    """Each tenant's policy, reused for ``APPROVAL_POLICY_CACHE_S`` (a read per transfer would double the hot path's
    round trips). Bounded: past ``APPROVAL_POLICY_CACHE_TENANTS_MAX`` tenants it starts over.

    One read per tenant at a time: the items of a batch (assessed concurrently) and the concurrent single transfers
    that find the entry expired all wait for the same read instead of each taking a connection for it."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._entries: dict[uuid.UUID, tuple[float, ApprovalPolicy]] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[ApprovalPolicy]] = {}

    def get(self, organization_id: uuid.UUID) -> ApprovalPolicy | None:
        entry = self._entries.get(organization_id)
        if entry is None or self._monotonic() - entry[0] > limits.APPROVAL_POLICY_CACHE_S:
            return None
        return entry[1]

    def put(self, organization_id: uuid.UUID, policy: ApprovalPolicy) -> None:
        # A read still in flight started before this policy was written: it must not overwrite it.
        self._loading.pop(organization_id, None)
        if len(self._entries) >= limits.APPROVAL_POLICY_CACHE_TENANTS_MAX:
            self._entries.clear()
        self._entries[organization_id] = (self._monotonic(), policy)

    async def get_or_load(
        self, organization_id: uuid.UUID, load: Callable[[], Awaitable[ApprovalPolicy]]
    ) -> ApprovalPolicy:
        cached = self.get(organization_id)
        if cached is not None:
            return cached
        loading = self._loading.get(organization_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(organization_id, load))
            # A read whose waiters all went away still ends quietly (its error is not "never retrieved").
            loading.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._loading[organization_id] = loading
        # Shielded: one waiter giving up does not cancel the read the others wait for.
        return await asyncio.shield(loading)

    async def _load(
        self, organization_id: uuid.UUID, load: Callable[[], Awaitable[ApprovalPolicy]]
    ) -> ApprovalPolicy:
        me = asyncio.current_task()
        try:
            policy = await load()
            if self._loading.get(organization_id) is me:
                self.put(organization_id, policy)
            return policy
        finally:
            if self._loading.get(organization_id) is me:
                del self._loading[organization_id]


async def _policy(
    pool: asyncpg.Pool, store: ApprovalStorePort, cache: PolicyCache, organization_id: uuid.UUID
) -> ApprovalPolicy:
    async def load() -> ApprovalPolicy:
        async with pool.acquire() as connection:
            return await store.get_approval_policy(connection, organization_id) or EMPTY_POLICY

    return await cache.get_or_load(organization_id, load)


class ApprovalGate:
    """Runs the inner gate (risk) first, then holds the transfer for approval if the tenant's policy asks for it.
    A transfer the inner gate already turned into a special hold (risk review) is left as it is."""

    def __init__(
        self, pool: asyncpg.Pool, store: ApprovalStorePort, cache: PolicyCache, inner: PreCommitGate
    ) -> None:
        self._pool = pool
        self._store = store
        self._cache = cache
        self._inner = inner

    async def before_commit(self, caller: Caller, command: TransferCommand) -> TransferCommand:
        command = await self._inner.before_commit(caller, command)
        if command.awaiting_approval or command.awaiting_review:
            return command
        org = caller.organization_id
        policy = await _policy(self._pool, self._store, self._cache, org)
        if not policy.may_apply(command.currency, command.amount_minor):
            return command
        async with self._pool.acquire() as connection:
            # An account's kind never changes, so reading it outside the commit's locks is safe.
            debit = await self._store.get_account(connection, org, command.debit_account_id)
        if debit is None or not policy.needs_approval(debit.kind, command.currency, command.amount_minor):
            return command
        return approvals.held_for_approval(command, limits.HOLD_TIMEOUT_S_DEFAULT * 1000)


@dataclass(frozen=True, slots=True)
class Decided:
    transfer: Transfer
    approval: ApprovalRecord


class ApprovalService:
    def __init__(self, pool: asyncpg.Pool, store: ApprovalStorePort, clock: Clock, cache: PolicyCache) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._cache = cache

    async def get_policy(self, caller: Caller) -> ApprovalPolicy:
        async with self._pool.acquire() as connection:
            return await self._store.get_approval_policy(connection, caller.organization_id) or EMPTY_POLICY

    async def set_policy(self, caller: Caller, *, rules: list[ApprovalRuleInput], request_id: str) -> ApprovalPolicy:
        violations: list[FieldViolation] = []
        request = parse_uuid(request_id, "request_id", violations)
        parsed, rule_violations = approvals.parse_rules(rules)
        violations += rule_violations
        if violations:
            raise invalid(violations)
        assert request is not None
        org = caller.organization_id
        now = self._clock()
        policy = ApprovalPolicy(parsed, now, caller.principal_id)
        fingerprint = _fingerprint([[int(r.account_kind), r.currency, r.threshold_minor] for r in parsed])
        async with transaction(self._pool) as connection:
            claim = ClaimedRequest("SetApprovalPolicy", org, fingerprint)
            earlier = await self._store.claim_request(connection, org, request, claim, now)
            old = await self._store.get_approval_policy(connection, org) or EMPTY_POLICY
            if earlier is not None:
                if earlier.method != claim.method or earlier.fingerprint != claim.fingerprint:
                    raise IdempotencyKeyReused("request_id", "policy")
                return old
            await self._store.save_approval_policy(connection, org, policy)
            details = {"old_rules": _rules_text(old), "new_rules": _rules_text(policy)}
            await record_audit(
                self._store,
                connection,
                caller,
                method="SetApprovalPolicy",
                resource_id=str(org),
                request_id=str(request),
                details=details,
                now=now,
            )
        self._cache.put(org, policy)
        return policy

    async def decide(
        self, caller: Caller, *, transfer_id: str, request_id: str, decision: ApprovalDecision, note: str
    ) -> Decided:
        """ApproveTransfer (posts the whole hold) and RejectTransfer (voids it, APPROVAL_REJECTED)."""
        violations: list[FieldViolation] = []
        transfer_key = parse_uuid(transfer_id, "transfer_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        note_field = "reason" if decision is ApprovalDecision.REJECTED else "note"
        if decision is ApprovalDecision.REJECTED and not note.strip():
            violations.append(FieldViolation(note_field, "is required"))
        if len(note) > limits.NOTE_CHARS_MAX:
            violations.append(FieldViolation(note_field, f"must be at most {limits.NOTE_CHARS_MAX} characters"))
        if violations:
            raise invalid(violations)
        assert transfer_key is not None
        assert request is not None
        org = caller.organization_id
        async with self._pool.acquire() as connection:
            transfer = await self._store.get_transfer(connection, org, transfer_key)
            earlier = await self._store.get_approval(connection, org, transfer_key)
        if transfer is None:
            raise TransferNotFound()
        if earlier is not None:
            return _replayed(transfer, earlier, request, decision)
        approvals.ensure_may_decide(transfer, caller.principal_id, self._clock())
        transition = HoldTransition(
            action=HoldAction.POST if decision is ApprovalDecision.APPROVED else HoldAction.VOID,
            void_reason=VoidReason.APPROVAL_REJECTED,
            request_id=request,
            approval=True,
        )
        async with transaction(self._pool) as connection:
            outcomes = await commit_hold_transitions(
                connection, self._store, [HoldItem(caller, transfer_key, transition)], self._clock
            )
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
            if outcome.replayed:
                # The same request won a moment ago on another connection; its decision is committed.
                recorded = await self._store.get_approval(connection, org, transfer_key)
                assert recorded is not None
                return _replayed(outcome.transfer, recorded, request, decision)
            record = ApprovalRecord(transfer_key, decision, caller.principal_id, note, request, self._clock())
            await self._store.insert_approval(connection, org, record)
            await record_audit(
                self._store,
                connection,
                caller,
                method="ApproveTransfer" if decision is ApprovalDecision.APPROVED else "RejectTransfer",
                resource_id=str(transfer_key),
                request_id=str(request),
                details={
                    "maker_principal_id": transfer.created_by_principal_id,
                    "amount_minor": str(transfer.amount_minor),
                    "currency": transfer.currency,
                    note_field: note,
                },
                now=record.decided_at,
            )
        return Decided(outcome.transfer, record)

    async def list_pending(
        self, caller: Caller, *, page_size: int, page_token: str, account_id: str, exclude_own: bool
    ) -> Page[Transfer]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        account = parse_uuid(account_id, "account_id", violations, required=False)
        if violations:
            raise invalid(violations)
        exclude = caller.principal_id if exclude_own else ""
        filter_key = {"a": str(account or ""), "x": exclude}
        cursor = paging.decode_page_token(page_token, filter_key)
        after = None
        if cursor is not None:
            after_id = cursor_uuid(cursor, "i")
            assert after_id is not None
            after = (dt.datetime.fromisoformat(str(cursor["t"])), after_id)
        async with self._pool.acquire() as connection:
            rows = await self._store.list_pending_approvals(
                connection,
                caller.organization_id,
                account_id=account,
                exclude_principal_id=exclude,
                after=after,
                limit=size + 1,
            )
        page, token = paging.next_page(rows, size, _pending_cursor, filter_key)
        return Page(page, token)

    async def expire_due_approvals(self, now: dt.datetime) -> int:
        """One sweep: transfers still awaiting approval when their hold runs out expire like any hold (the money is
        released); a decision racing the sweep either wins or finds the hold EXPIRED."""
        async with transaction(self._pool) as connection:
            due = await self._store.due_approval_holds(connection, now, limits.EXPIRY_SWEEP_BATCH_MAX)
            if not due:
                return 0
            items = [
                HoldItem(Caller(org, EXPIRY_SWEEPER_PRINCIPAL, None), transfer_id, HoldTransition(HoldAction.EXPIRE))
                for org, transfer_id in due
            ]
            outcomes = await commit_hold_transitions(connection, self._store, items, self._clock)
        return sum(1 for outcome in outcomes if outcome.error is None)


def _replayed(transfer: Transfer, earlier: ApprovalRecord, request: uuid.UUID, decision: ApprovalDecision) -> Decided:
    """A decided transfer: the same request gets the original answer; any other request finds it decided."""
    if earlier.request_id != request:
        raise HoldNotPending(str(transfer.transfer_id), transfer.status.name)
    if earlier.decision is not decision:
        raise IdempotencyKeyReused("request_id", "decision")
    return Decided(transfer, earlier)


def _pending_cursor(transfer: Transfer) -> dict[str, str]:
    assert transfer.hold_expires_at is not None, "a transfer awaiting approval is a hold"
    return {"t": transfer.hold_expires_at.isoformat(), "i": str(transfer.transfer_id)}


def _fingerprint(content: object) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _rules_text(policy: ApprovalPolicy) -> str:
    return json.dumps([[r.account_kind.name, r.currency, r.threshold_minor] for r in policy.rules])
