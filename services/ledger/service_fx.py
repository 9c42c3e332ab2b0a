"""FX use cases: SetFxRate, GetFxRate, QuoteExchange, Exchange (two legs through the tenant's FX liquidity
accounts, committed atomically in one transaction with the quote marked used)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, NotFound, invalid
from services.kit.ids import parse_uuid
from services.ledger import domain_fx, limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore, TransferItem, commit_transfers
from services.ledger.currencies import CURRENCY_CODE_PATTERN, Currency
from services.ledger.domain_accounts import Account, Money
from services.ledger.domain_transfers import Transfer, TransferCommand, TransferKind
from services.ledger.errors import (
    AccountNotFound,
    FxQuoteAlreadyUsed,
    FxQuoteExpired,
    FxRateUnavailable,
    UnknownCurrency,
)
from services.ledger.events import fx_rate_event, outbox_row
from services.ledger.service import record_audit
from services.ledger.store_chain import OutboxRow
from services.ledger.store_fx import ExchangeRecord, FxRate, Quote
from services.ledger.store_ports import AuditWriter


class FxServiceStore(CommitStore, AuditWriter, Protocol):
    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None: ...
    async def currency(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, code: str
    ) -> Currency | None: ...
    async def get_account(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
    ) -> Account | None: ...
    async def upsert_rate(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, rate: FxRate
    ) -> FxRate: ...
    async def get_rate(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, base: str, quote: str
    ) -> FxRate | None: ...
    async def insert_quote(self, connection: asyncpg.Connection, quote: Quote) -> Quote: ...
    async def get_quote(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, quote_id: uuid.UUID, *, lock: bool = False
    ) -> Quote | None: ...
    async def liquidity_account(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, currency: str
    ) -> uuid.UUID | None: ...
    async def get_exchange(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, exchange_id: uuid.UUID
    ) -> ExchangeRecord | None: ...
    async def insert_exchange(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ExchangeRecord
    ) -> None: ...


class QuoteNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("quote not found")


@dataclass(frozen=True, slots=True)
class ExchangeResult:
    record: ExchangeRecord
    quote: Quote
    sell_transfer: Transfer
    buy_transfer: Transfer


class FxService:
    def __init__(self, pool: asyncpg.Pool, store: FxServiceStore, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def set_rate(
        self, caller: Caller, *, base: str, quote: str, rate: str, valid_until: dt.datetime | None, request_id: str
    ) -> FxRate:
        violations: list[FieldViolation] = []
        for field, code in (("base_currency", base), ("quote_currency", quote)):
            if not CURRENCY_CODE_PATTERN.match(code):
                violations.append(FieldViolation(field, "must be 3 to 12 upper-case letters or digits"))
        if base == quote:
            violations.append(FieldViolation("quote_currency", "must differ from base_currency"))
        parsed_rate = domain_fx.parse_rate(rate, "rate", violations)
        request = parse_uuid(request_id, "request_id", violations)
        now = self._clock()
        if valid_until is not None and valid_until <= now:
            violations.append(FieldViolation("valid_until", "must be in the future"))
        if violations:
            raise invalid(violations)
        assert parsed_rate is not None
        assert request is not None
        async with transaction(self._pool) as connection:
            for field, code in (("base_currency", base), ("quote_currency", quote)):
                if await self._store.currency(connection, caller.organization_id, code) is None:
                    raise UnknownCurrency(field)
            previous = await self._store.get_rate(connection, caller.organization_id, base, quote)
            wanted = FxRate(base, quote, parsed_rate, now, caller.principal_id, valid_until, request)
            stored = await self._store.upsert_rate(connection, caller.organization_id, wanted)
            if stored.request_id == request and stored.set_at == now:
                # This call changed the rate (a replay returns the stored row untouched): audit it and tell
                # subscribers, in the same transaction.
                await self._record_rate_change(connection, caller, previous, stored, now)
        if stored.request_id == request and stored.rate != parsed_rate:
            raise IdempotencyKeyReused("request_id", "rate")
        return stored

    async def _record_rate_change(
        self,
        connection: asyncpg.Connection,
        caller: Caller,
        previous: FxRate | None,
        stored: FxRate,
        now: dt.datetime,
    ) -> None:
        details = {
            "old_rate": "" if previous is None else format(previous.rate.normalize(), "f"),
            "new_rate": format(stored.rate.normalize(), "f"),
            "valid_until": "" if stored.valid_until is None else stored.valid_until.isoformat(),
        }
        pair = f"{stored.base_currency}/{stored.quote_currency}"
        await record_audit(self._store, connection, caller, "SetFxRate", pair, str(stored.request_id), details, now)
        row = outbox_row(caller.organization_id, caller.organization_id, fx_rate_event(stored), now)
        await self._store.enqueue_events(connection, [row])

    async def get_rate(self, caller: Caller, *, base: str, quote: str) -> FxRate:
        violations: list[FieldViolation] = []
        for field, code in (("base_currency", base), ("quote_currency", quote)):
            if not CURRENCY_CODE_PATTERN.match(code):
                violations.append(FieldViolation(field, "must be 3 to 12 upper-case letters or digits"))
        if violations:
            raise invalid(violations)
        async with self._pool.acquire() as connection:
            rate = await self._store.get_rate(connection, caller.organization_id, base, quote)
        if rate is None or (rate.valid_until is not None and rate.valid_until <= self._clock()):
            raise FxRateUnavailable(base, quote)
        return rate

    async def quote(
        self,
        caller: Caller,
        *,
        quote_id: str,
        debit_account_id: str,
        credit_account_id: str,
        sell: Money | None,
        buy: Money | None,
        ttl_s: int,
    ) -> Quote:
        violations: list[FieldViolation] = []
        parsed_id = parse_uuid(quote_id, "quote_id", violations)
        debit_id = parse_uuid(debit_account_id, "debit_account_id", violations)
        credit_id = parse_uuid(credit_account_id, "credit_account_id", violations)
        fixed = sell or buy
        if fixed is None:
            violations.append(FieldViolation("sell_amount", "sell_amount or buy_amount is required"))
        elif fixed.amount_minor <= 0 or fixed.amount_minor > limits.TRANSFER_AMOUNT_MINOR_MAX:
            violations.append(
                FieldViolation("sell_amount" if sell else "buy_amount", "must be positive and in range")
            )
        if ttl_s < 0 or ttl_s > limits.FX_QUOTE_TTL_S_MAX:
            violations.append(FieldViolation("quote_ttl", f"must be at most {limits.FX_QUOTE_TTL_S_MAX} s"))
        if violations:
            raise invalid(violations)
        assert parsed_id is not None
        assert debit_id is not None
        assert credit_id is not None
        assert fixed is not None
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            debit = await self._store.get_account(connection, org, debit_id)
            credit = await self._store.get_account(connection, org, credit_id)
            if debit is None or not caller.may_see(debit.customer_id):
                raise AccountNotFound("debit_account_id")
            if credit is None:
                raise AccountNotFound("credit_account_id")
            expected = debit.currency if sell else credit.currency
            if fixed.currency != expected:
                field = "sell_amount.currency" if sell else "buy_amount.currency"
                raise invalid([FieldViolation(field, f"must be {expected}")])
            rate = await self._rate(connection, org, debit.currency, credit.currency, now)
            sell_currency = await self._store.currency(connection, org, debit.currency)
            buy_currency = await self._store.currency(connection, org, credit.currency)
            assert sell_currency is not None
            assert buy_currency is not None
            if sell is not None:
                sell_minor = sell.amount_minor
                buy_minor = domain_fx.buy_for_sell(sell_minor, rate, sell_currency.scale, buy_currency.scale)
            else:
                assert buy is not None
                buy_minor = buy.amount_minor
                sell_minor = domain_fx.sell_for_buy(buy_minor, rate, sell_currency.scale, buy_currency.scale)
            if buy_minor <= 0:
                raise invalid([FieldViolation("sell_amount.amount_minor", "buys less than one minor unit")])
            ttl = ttl_s or limits.FX_QUOTE_TTL_S_DEFAULT
            quote = Quote(
                org,
                parsed_id,
                debit_id,
                credit_id,
                debit.currency,
                sell_minor,
                credit.currency,
                buy_minor,
                rate,
                now + dt.timedelta(seconds=ttl),
                now,
                None,
            )
            stored = await self._store.insert_quote(connection, quote)
        if (stored.debit_account_id, stored.credit_account_id) != (debit_id, credit_id):
            raise IdempotencyKeyReused("quote_id", "debit_account_id")
        return stored

    async def _rate(
        self, connection: asyncpg.Connection, org: uuid.UUID, sell: str, buy: str, now: dt.datetime
    ) -> decimal.Decimal:
        direct = await self._store.get_rate(connection, org, sell, buy)
        if direct is not None and (direct.valid_until is None or direct.valid_until > now):
            return direct.rate
        inverse = await self._store.get_rate(connection, org, buy, sell)
        if inverse is not None and (inverse.valid_until is None or inverse.valid_until > now):
            return domain_fx.invert(inverse.rate)
        raise FxRateUnavailable(sell, buy)

    async def exchange(self, caller: Caller, *, exchange_id: str, quote_id: str) -> ExchangeResult:
        violations: list[FieldViolation] = []
        parsed_exchange = parse_uuid(exchange_id, "exchange_id", violations)
        parsed_quote = parse_uuid(quote_id, "quote_id", violations)
        if violations:
            raise invalid(violations)
        assert parsed_exchange is not None
        assert parsed_quote is not None
        org = caller.organization_id
        async with transaction(self._pool) as connection:
            earlier = await self._store.get_exchange(connection, org, parsed_exchange)
            if earlier is not None:
                if earlier.quote_id != parsed_quote:
                    raise IdempotencyKeyReused("exchange_id", "quote_id")
                return await self._result(connection, org, earlier)
            quote = await self._store.get_quote(connection, org, parsed_quote, lock=True)
            if quote is None:
                raise QuoteNotFound()
            if quote.exchange_id is not None:
                raise FxQuoteAlreadyUsed(str(parsed_quote))
            if quote.expires_at <= self._clock():
                raise FxQuoteExpired(str(parsed_quote))
            sell_pool = await self._store.liquidity_account(connection, org, quote.sell_currency)
            buy_pool = await self._store.liquidity_account(connection, org, quote.buy_currency)
            if sell_pool is None or buy_pool is None:
                raise FxRateUnavailable(quote.sell_currency, quote.buy_currency)
            legs = [
                _leg(
                    uuid.uuid5(parsed_exchange, "sell"),
                    quote.debit_account_id,
                    sell_pool,
                    quote.sell_currency,
                    quote.sell_amount_minor,
                    parsed_exchange,
                ),
                _leg(
                    uuid.uuid5(parsed_exchange, "buy"),
                    buy_pool,
                    quote.credit_account_id,
                    quote.buy_currency,
                    quote.buy_amount_minor,
                    parsed_exchange,
                ),
            ]
            # The buy leg debits the liquidity pool, not the caller's account: run it as the tenant.
            tenant = Caller(org, caller.principal_id, None, caller.device_id)
            outcomes = await commit_transfers(
                connection, self._store, [TransferItem(caller, legs[0]), TransferItem(tenant, legs[1])], self._clock
            )
            for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error
            record = ExchangeRecord(
                parsed_exchange, parsed_quote, legs[0].transfer_id, legs[1].transfer_id, self._clock()
            )
            await self._store.insert_exchange(connection, org, record)
            sell_transfer, buy_transfer = (o.transfer for o in outcomes)
            assert sell_transfer is not None
            assert buy_transfer is not None
        return ExchangeResult(record, quote, sell_transfer, buy_transfer)

    async def _result(self, connection: asyncpg.Connection, org: uuid.UUID, record: ExchangeRecord) -> ExchangeResult:
        quote = await self._store.get_quote(connection, org, record.quote_id)
        found = await self._store.find_transfers(
            connection, [(org, record.sell_transfer_id), (org, record.buy_transfer_id)]
        )
        assert quote is not None
        return ExchangeResult(
            record, quote, found[(org, record.sell_transfer_id)], found[(org, record.buy_transfer_id)]
        )


def _leg(
    transfer_id: uuid.UUID,
    debit: uuid.UUID,
    credit: uuid.UUID,
    currency: str,
    amount_minor: int,
    exchange_id: uuid.UUID,
) -> TransferCommand:
    return TransferCommand(
        transfer_id=transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        currency=currency,
        amount_minor=amount_minor,
        pending=False,
        hold_timeout_ms=0,
        reference="",
        kind=TransferKind.EXCHANGE_LEG,
        exchange_id=exchange_id,
    )
