"""SQL for FX rates, quotes and exchanges."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class FxRate:
    base_currency: str
    quote_currency: str
    rate: decimal.Decimal
    set_at: dt.datetime
    set_by_principal_id: str
    valid_until: dt.datetime | None
    request_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Quote:
    organization_id: uuid.UUID
    quote_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    sell_currency: str
    sell_amount_minor: int
    buy_currency: str
    buy_amount_minor: int
    rate: decimal.Decimal
    expires_at: dt.datetime
    created_at: dt.datetime
    exchange_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    exchange_id: uuid.UUID
    quote_id: uuid.UUID
    sell_transfer_id: uuid.UUID
    buy_transfer_id: uuid.UUID
    created_at: dt.datetime


class FxStore:
    async def upsert_rate(self, connection: asyncpg.Connection, organization_id: uuid.UUID, rate: FxRate) -> FxRate:
        row = await connection.fetchrow(
            """INSERT INTO fx_rates (organization_id, base_currency, quote_currency, rate, set_at, set_by_principal_id,
                   valid_until, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (organization_id, base_currency, quote_currency) DO UPDATE SET rate = EXCLUDED.rate,
                   set_at = EXCLUDED.set_at, set_by_principal_id = EXCLUDED.set_by_principal_id,
                   valid_until = EXCLUDED.valid_until, request_id = EXCLUDED.request_id
               WHERE fx_rates.request_id <> EXCLUDED.request_id
               RETURNING *""",
            organization_id,
            rate.base_currency,
            rate.quote_currency,
            rate.rate,
            rate.set_at,
            rate.set_by_principal_id,
            rate.valid_until,
            rate.request_id,
        )
        if row is None:
            stored = await self.get_rate(connection, organization_id, rate.base_currency, rate.quote_currency)
            assert stored is not None
            return stored
        return _rate(row)

    async def get_rate(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, base: str, quote: str
    ) -> FxRate | None:
        row = await connection.fetchrow(
            "SELECT * FROM fx_rates WHERE organization_id = $1 AND base_currency = $2 AND quote_currency = $3",
            organization_id,
            base,
            quote,
        )
        return None if row is None else _rate(row)

    async def insert_quote(self, connection: asyncpg.Connection, quote: Quote) -> Quote:
        row = await connection.fetchrow(
            """INSERT INTO fx_quotes (organization_id, quote_id, debit_account_id, credit_account_id, sell_currency,
                   sell_amount_minor, buy_currency, buy_amount_minor, rate, expires_at, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (organization_id, quote_id) DO UPDATE SET quote_id = EXCLUDED.quote_id RETURNING *""",
            quote.organization_id,
            quote.quote_id,
            quote.debit_account_id,
            quote.credit_account_id,
            quote.sell_currency,
            quote.sell_amount_minor,
            quote.buy_currency,
            quote.buy_amount_minor,
            quote.rate,
            quote.expires_at,
            quote.created_at,
        )
        assert row is not None
        return _quote(row)

    async def get_quote(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, quote_id: uuid.UUID, *, lock: bool = False
    ) -> Quote | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await connection.fetchrow(
            f"SELECT * FROM fx_quotes WHERE organization_id = $1 AND quote_id = $2{suffix}",  # noqa: S608 -- constant
            organization_id,
            quote_id,
        )
        return None if row is None else _quote(row)

    async def liquidity_account(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, currency: str
    ) -> uuid.UUID | None:
        value = await connection.fetchval(
            """SELECT account_id FROM accounts WHERE organization_id = $1 AND kind = 5 AND currency = $2 AND status = 1
               ORDER BY account_id LIMIT 1""",
            organization_id,
            currency,
        )
        return None if value is None else uuid.UUID(str(value))

    async def get_exchange(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, exchange_id: uuid.UUID
    ) -> ExchangeRecord | None:
        row = await connection.fetchrow(
            "SELECT * FROM exchanges WHERE organization_id = $1 AND exchange_id = $2", organization_id, exchange_id
        )
        if row is None:
            return None
        return ExchangeRecord(
            row["exchange_id"], row["quote_id"], row["sell_transfer_id"], row["buy_transfer_id"], row["created_at"]
        )

    async def insert_exchange(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ExchangeRecord
    ) -> None:
        await connection.execute(
            """INSERT INTO exchanges (organization_id, exchange_id, quote_id, sell_transfer_id, buy_transfer_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            organization_id,
            record.exchange_id,
            record.quote_id,
            record.sell_transfer_id,
            record.buy_transfer_id,
            record.created_at,
        )
        await connection.execute(
            "UPDATE fx_quotes SET exchange_id = $3 WHERE organization_id = $1 AND quote_id = $2",
            organization_id,
            record.quote_id,
            record.exchange_id,
        )


def _rate(row: asyncpg.Record) -> FxRate:
    return FxRate(
        row["base_currency"],
        row["quote_currency"],
        row["rate"],
        row["set_at"],
        row["set_by_principal_id"],
        row["valid_until"],
        row["request_id"],
    )


def _quote(row: asyncpg.Record) -> Quote:
    return Quote(
        row["organization_id"],
        row["quote_id"],
        row["debit_account_id"],
        row["credit_account_id"],
        row["sell_currency"],
        row["sell_amount_minor"],
        row["buy_currency"],
        row["buy_amount_minor"],
        row["rate"],
        row["expires_at"],
        row["created_at"],
        row["exchange_id"],
    )
