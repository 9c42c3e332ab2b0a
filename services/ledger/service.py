"""Account and asset use cases: one async function per RPC, each owning its transaction scope.

The store is a ``typing.Protocol`` (``LedgerStore`` below); ``store.PostgresLedgerStore`` implements it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, PermissionDenied, invalid
from services.kit.ids import parse_uuid, uuid7
from services.kit.request_context import current_request_id
from services.kit.telemetry import current_traceparent
from services.ledger import domain_accounts as accounts
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore
from services.ledger.currencies import CURRENCY_CODE_PATTERN, Currency
from services.ledger.domain_accounts import Account, LimitsUpdate, Money, OpenAccountCommand
from services.ledger.domain_transfers import Transfer
from services.ledger.errors import AccountNotFound, UnknownCurrency
from services.ledger.events import account_event, outbox_row
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.store_accounts import AccountFilter, AuditEvent, ClaimedRequest
from services.ledger.store_chain import OutboxRow
from services.ledger.store_ports import AccountReader, AuditWriter, ExportAudits, RequestClaims, ReversalReader
from services.ledger.store_transfer_links import TransferLinks
from services.ledger.store_transfers import BalanceAt, StatementRow, TransferFilter, TransferKey


class LedgerStore(CommitStore, AccountReader, RequestClaims, AuditWriter, ReversalReader, ExportAudits, Protocol):
    async def transfer_links(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, TransferLinks]: ...
    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None: ...
    async def currency(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, code: str
    ) -> Currency | None: ...
    async def insert_asset(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, asset: Currency, now: dt.datetime
    ) -> tuple[Currency, dt.datetime]: ...
    async def list_assets(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, after_code: str, limit: int
    ) -> list[tuple[Currency, dt.datetime]]: ...
    async def insert_account(self, connection: asyncpg.Connection, account: Account) -> bool: ...
    async def list_accounts(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: AccountFilter,
        after_account_id: uuid.UUID | None,
        limit: int,
    ) -> list[Account]: ...
    async def update_account_state(self, connection: asyncpg.Connection, account: Account) -> None: ...

    async def list_audit_events(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        resource_id: str,
        actor_principal_id: str,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> list[AuditEvent]: ...
    async def list_transfers(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: TransferFilter,
        before: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Transfer]: ...
    async def due_holds(self, connection: asyncpg.Connection, now: dt.datetime, limit: int) -> list[TransferKey]: ...
    async def count_due_holds(self, connection: asyncpg.Connection, now: dt.datetime, cap: int) -> int: ...
    async def statement(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        account_id: uuid.UUID,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        after: tuple[dt.datetime, int] | None,
        limit: int,
    ) -> list[StatementRow]: ...
    async def pending_at(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, account_id: uuid.UUID, moment: dt.datetime
    ) -> tuple[int, int]: ...
    async def balance_before(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        account_id: uuid.UUID,
        moment: dt.datetime,
        *,
        inclusive: bool,
    ) -> BalanceAt: ...
    async def find_batch(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, batch_id: uuid.UUID
    ) -> tuple[str, list[dict[str, str]]] | None: ...
    async def insert_batch(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        batch_id: uuid.UUID,
        fingerprint: str,
        results: list[dict[str, str]],
        now: dt.datetime,
    ) -> None: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AccountService:
    def __init__(self, pool: asyncpg.Pool, store: LedgerStore, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def open_account(
        self,
        caller: Caller,
        *,
        account_id: str,
        customer_id: str,
        kind: int,
        currency: str,
        balance_rule: int,
        credit_limit: Money | None,
        daily_outflow_limit: Money | None,
        label: str,
    ) -> Account:
        command = accounts.parse_open_account(
            account_id=account_id,
            customer_id=customer_id,
            kind=kind,
            currency=currency,
            balance_rule=balance_rule,
            credit_limit=credit_limit,
            daily_outflow_limit=daily_outflow_limit,
            label=label,
            caller_customer_id=caller.customer_id,
        )
        if command.credit_limit_minor and not caller.is_accounts_admin:
            raise PermissionDenied("setting credit_limit needs the ledger.accounts.admin permission")
        org = caller.organization_id
        async with transaction(self._pool) as connection:
            if await self._store.currency(connection, org, command.currency) is None:
                raise UnknownCurrency("currency")
            account = accounts.new_account(org, command, self._clock())
            if await self._store.insert_account(connection, account):
                await self._publish(connection, "OpenAccount", account, caller)
                return account
            existing = await self._store.get_account(connection, org, command.account_id)
        assert existing is not None
        return _replayed_account(command, existing)

    async def get_account(self, caller: Caller, account_id: str) -> Account:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(account_id, "account_id", violations)
        if violations:
            raise invalid(violations)
        assert parsed is not None
        async with self._pool.acquire() as connection:
            account = await self._store.get_account(connection, caller.organization_id, parsed)
        if account is None or not caller.may_see(account.customer_id):
            raise AccountNotFound()
        return account

    async def list_accounts(
        self,
        caller: Caller,
        *,
        page_size: int,
        page_token: str,
        customer_id: str,
        kind: int,
        currency: str,
        status: int,
    ) -> Page[Account]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        customer = parse_uuid(customer_id, "customer_id", violations, required=False)
        if currency and not CURRENCY_CODE_PATTERN.match(currency):
            violations.append(FieldViolation("currency", "must be 3 to 12 upper-case letters or digits"))
        if kind and kind not in accounts.AccountKind._value2member_map_:
            violations.append(FieldViolation("kind", "is not a known account kind"))
        if status and status not in accounts.AccountStatus._value2member_map_:
            violations.append(FieldViolation("status", "is not a known status"))
        if violations:
            raise invalid(violations)
        if caller.customer_id is not None:
            if customer is not None and customer != caller.customer_id:
                return Page([], "")
            customer = caller.customer_id
        filters = AccountFilter(customer, kind, currency, status)
        filter_key = {"customer_id": str(customer or ""), "kind": kind, "currency": currency, "status": status}
        cursor = paging.decode_page_token(page_token, filter_key)
        after = cursor_uuid(cursor, "a")
        async with self._pool.acquire() as connection:
            rows = await self._store.list_accounts(connection, caller.organization_id, filters, after, size + 1)
        page, token = paging.next_page(rows, size, lambda last: {"a": str(last.account_id)}, filter_key)
        return Page(page, token)

    async def change_status(
        self, caller: Caller, *, method: str, account_id: str, reason: str, request_id: str
    ) -> Account:
        """FreezeAccount, UnfreezeAccount and CloseAccount: validate, claim the request id, move, audit."""
        violations: list[FieldViolation] = []
        parsed = parse_uuid(account_id, "account_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if method == "FreezeAccount" and not reason.strip():
            violations.append(FieldViolation("reason", "is required"))
        if method == "UnfreezeAccount" and not reason.strip():
            violations.append(FieldViolation("reason", "is required"))
        if len(reason) > limits.REASON_CHARS_MAX:
            violations.append(FieldViolation("reason", f"must be at most {limits.REASON_CHARS_MAX} characters"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert request is not None
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            account = await self._store.get_account(connection, org, parsed, lock=True)
            if account is None or not caller.may_see(account.customer_id):
                raise AccountNotFound()
            claim = ClaimedRequest(method, parsed, _fingerprint({"reason": reason}))
            earlier = await self._store.claim_request(connection, org, request, claim, now)
            if earlier is not None:
                _check_replay(earlier, claim)
                return account
            if method == "FreezeAccount":
                changed = accounts.freeze(account, reason, now)
            elif method == "UnfreezeAccount":
                changed = accounts.unfreeze(account, now)
            else:
                changed = accounts.close(account, now)
            await self._store.update_account_state(connection, changed)
            await self._audit(connection, caller, method, str(parsed), str(request), {"reason": reason}, now)
            await self._publish(connection, method, changed, caller, reason)
        return changed

    async def update_limits(
        self,
        caller: Caller,
        *,
        account_id: str,
        paths: list[str],
        credit_limit: Money | None,
        daily_outflow_limit: Money | None,
        request_id: str,
    ) -> Account:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(account_id, "account_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        update, limit_violations = accounts.parse_limits_update(paths, credit_limit, daily_outflow_limit)
        violations += limit_violations
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert request is not None
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            account = await self._store.get_account(connection, org, parsed, lock=True)
            if account is None or not caller.may_see(account.customer_id):
                raise AccountNotFound()
            claim = ClaimedRequest("UpdateAccountLimits", parsed, _fingerprint(_limits_key(update)))
            earlier = await self._store.claim_request(connection, org, request, claim, now)
            if earlier is not None:
                _check_replay(earlier, claim)
                return account
            currencies = (
                credit_limit.currency if credit_limit is not None else None,
                daily_outflow_limit.currency if daily_outflow_limit is not None else None,
            )
            changed = accounts.apply_limits(account, update, currencies, now)
            await self._store.update_account_state(connection, changed)
            details = {
                "old_credit_limit_minor": str(account.credit_limit_minor),
                "new_credit_limit_minor": str(changed.credit_limit_minor),
                "old_daily_outflow_limit_minor": _optional(account.daily_outflow_limit_minor),
                "new_daily_outflow_limit_minor": _optional(changed.daily_outflow_limit_minor),
            }
            await self._audit(connection, caller, "UpdateAccountLimits", str(parsed), str(request), details, now)
            await self._publish(connection, "UpdateAccountLimits", changed, caller)
        return changed

    async def _publish(
        self, connection: asyncpg.Connection, method: str, account: Account, caller: Caller, reason: str = ""
    ) -> None:
        payload = account_event(method, account, caller.principal_id, reason)
        row = outbox_row(account.organization_id, account.account_id, payload, self._clock())
        await self._store.enqueue_events(connection, [row])

    async def _audit(
        self,
        connection: asyncpg.Connection,
        caller: Caller,
        method: str,
        resource_id: str,
        request_id: str,
        details: Mapping[str, str],
        now: dt.datetime,
    ) -> None:
        await record_audit(self._store, connection, caller, method, resource_id, request_id, details, now)


async def record_audit(
    store: AuditWriter,
    connection: asyncpg.Connection,
    caller: Caller,
    method: str,
    resource_id: str,
    request_id: str,
    details: Mapping[str, str],
    now: dt.datetime,
) -> None:
    """One audit event in the caller's transaction: who, what, on which resource, with old and new values."""
    traceparent = current_traceparent() or ""
    trace_id = traceparent.split("-")[1] if traceparent.count("-") >= 3 else ""
    await store.insert_audit_event(
        connection,
        caller.organization_id,
        audit_event_id=uuid7(),
        method=method,
        actor_principal_id=caller.principal_id,
        resource_id=resource_id,
        request_id=current_request_id() or request_id,
        trace_id=trace_id,
        details=details,
        occurred_at=now,
    )


def _replayed_account(command: OpenAccountCommand, existing: Account) -> Account:
    difference = command.first_difference(existing)
    if difference is not None:
        raise IdempotencyKeyReused("account_id", difference)
    return existing


def _fingerprint(content: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _check_replay(earlier: ClaimedRequest, claim: ClaimedRequest) -> None:
    if earlier.method != claim.method:
        raise IdempotencyKeyReused("request_id", "method")
    if earlier.account_id != claim.account_id:
        raise IdempotencyKeyReused("request_id", "account_id")
    if earlier.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused("request_id", "reason" if claim.method != "UpdateAccountLimits" else "limits")


def _limits_key(update: LimitsUpdate) -> dict[str, object]:
    return {
        "credit": [update.set_credit_limit, update.credit_limit_minor],
        "outflow": [update.set_daily_outflow_limit, update.daily_outflow_limit_minor],
    }


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)
