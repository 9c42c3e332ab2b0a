"""Statements and balances in the past: GetStatement (postings with running balance, time-bounded, keyset pages)
and GetBalanceAt."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, invalid
from services.kit.ids import parse_uuid
from services.ledger.caller import Caller
from services.ledger.commit import Clock
from services.ledger.domain_accounts import Account, signed_balance
from services.ledger.errors import AccountNotFound
from services.ledger.pages import checked_page_size
from services.ledger.service import LedgerStore
from services.ledger.store_transfers import BalanceAt, StatementRow


@dataclass(frozen=True, slots=True)
class Statement:
    lines: list[tuple[StatementRow, int]]
    opening_balance_minor: int
    currency: str
    next_page_token: str


class StatementService:
    def __init__(self, pool: asyncpg.Pool, store: LedgerStore, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def statement(
        self,
        caller: Caller,
        *,
        account_id: str,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        page_size: int,
        page_token: str,
    ) -> Statement:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        parsed = parse_uuid(account_id, "account_id", violations)
        if start_time and end_time and end_time <= start_time:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        account = await self._visible_account(caller, parsed)
        filter_key = {"a": str(parsed), "from": str(start_time), "to": str(end_time)}
        cursor = paging.decode_page_token(page_token, filter_key)
        after = None if cursor is None else (dt.datetime.fromisoformat(str(cursor["t"])), int(str(cursor["s"])))
        async with self._pool.acquire() as connection:
            rows = await self._store.statement(
                connection, caller.organization_id, parsed, start_time, end_time, after, size + 1
            )
            opening = (
                await self._store.balance_before(
                    connection, caller.organization_id, parsed, start_time, inclusive=False
                )
                if start_time
                else BalanceAt(0, 0)
            )
        page, token = paging.next_page(
            rows,
            size,
            lambda last: {"t": last.posting.posted_at.isoformat(), "s": last.posting.account_seq},
            filter_key,
        )
        lines = [
            (
                row,
                signed_balance(
                    account.balance_rule, row.posting.posted_debits_after, row.posting.posted_credits_after
                ),
            )
            for row in page
        ]
        opening_minor = signed_balance(
            account.balance_rule, opening.posted_debits_minor, opening.posted_credits_minor
        )
        return Statement(lines, opening_minor, account.currency, token)

    async def balance_at(
        self, caller: Caller, *, account_id: str, as_of: dt.datetime | None
    ) -> tuple[Account, BalanceAt]:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(account_id, "account_id", violations)
        if as_of is None:
            violations.append(FieldViolation("as_of", "is required"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        assert as_of is not None
        account = await self._visible_account(caller, parsed)
        async with transaction(self._pool, isolation="repeatable_read") as connection:
            # One snapshot for both reads, so a hold posted between them is counted once.
            posted = await self._store.balance_before(
                connection, caller.organization_id, parsed, as_of, inclusive=True
            )
            pending_debits, pending_credits = await self._store.pending_at(
                connection, caller.organization_id, parsed, as_of
            )
        return account, replace(posted, pending_debits_minor=pending_debits, pending_credits_minor=pending_credits)

    async def _visible_account(self, caller: Caller, account_id: uuid.UUID) -> Account:
        async with self._pool.acquire() as connection:
            account = await self._store.get_account(connection, caller.organization_id, account_id)
        if account is None or not caller.may_see(account.customer_id):
            raise AccountNotFound()
        return account
