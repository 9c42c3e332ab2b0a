"""The ledger's retention job against real Postgres: request records and unused FX quotes past retention are purged
in bounded batches; young ones, quotes an exchange used and every financial record (here a twenty-year-old open hold
and its exchange) are kept; a second sweep purges nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.kit.config import ConfigError, Env
from services.kit.retention import RetentionJob
from services.ledger.retention import ledger_retention_job, load_ledger_retention
from tests.support.retention import migrated_pool, sized

pytestmark = pytest.mark.integration

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "services" / "ledger" / "migrations"
NOW = datetime(2033, 5, 2, 10, 0, tzinfo=UTC)
ORG = uuid.uuid4()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url, MIGRATIONS_DIR, "ledger") as created:
        yield created


def _job(pool: asyncpg.Pool, *, batch_rows: int = 500, rounds_max: int = 100) -> RetentionJob:
    job = ledger_retention_job(lambda: pool, load_ledger_retention(Env({})), lambda: NOW)
    return sized(job, batch_rows=batch_rows, rounds_max=rounds_max)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _quote(pool: asyncpg.Pool, expired_days: float, exchange_id: uuid.UUID | None) -> uuid.UUID:
    quote_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO fx_quotes (organization_id, quote_id, debit_account_id, credit_account_id, sell_currency,"
        " sell_amount_minor, buy_currency, buy_amount_minor, rate, expires_at, created_at, exchange_id)"
        " VALUES ($1, $2, $3, $4, 'EUR', 100, 'JPY', 16000, 160, $5, $5, $6)",
        ORG,
        quote_id,
        uuid.uuid4(),
        uuid.uuid4(),
        _ago(expired_days),
        exchange_id,
    )
    return quote_id


async def test_request_records_and_unused_quotes_purged_financial_records_kept(pool: asyncpg.Pool) -> None:
    for age_days in (500, 500, 500, 10):
        await pool.execute(
            "INSERT INTO account_requests (organization_id, request_id, method, account_id, fingerprint, created_at)"
            " VALUES ($1, $2, 'FreezeAccount', $3, 'f', $4)",
            ORG,
            uuid.uuid4(),
            uuid.uuid4(),
            _ago(age_days),
        )
        await pool.execute(
            "INSERT INTO transfer_batches (organization_id, batch_id, fingerprint, results, created_at)"
            " VALUES ($1, $2, 'f', '[]', $3)",
            ORG,
            uuid.uuid4(),
            _ago(age_days),
        )
    unused_old = await _quote(pool, 100, None)
    unused_young = await _quote(pool, 5, None)
    exchange_id = uuid.uuid4()
    used_old = await _quote(pool, 7300, exchange_id)
    # Financial records, however old, and an open hold among them: never purged by the job.
    hold_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO transfers (organization_id, transfer_id, debit_account_id, credit_account_id, currency,"
        " amount_minor, kind, status, reference, pending, hold_timeout_ms, hold_expires_at, created_by_principal_id,"
        " created_at) VALUES ($1, $2, $3, $4, 'EUR', 100, 1, 1, '', true, 1000, $5, 'p', $5)",
        ORG,
        hold_id,
        uuid.uuid4(),
        uuid.uuid4(),
        _ago(7300),
    )
    await pool.execute(
        "INSERT INTO exchanges (organization_id, exchange_id, quote_id, sell_transfer_id, buy_transfer_id,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        ORG,
        exchange_id,
        used_old,
        uuid.uuid4(),
        uuid.uuid4(),
        _ago(7300),
    )

    job = _job(pool, batch_rows=2, rounds_max=1)
    first = await job.sweep_once()
    # Two targets of request records (account verbs, batches), two rows each at most.
    assert first == {"ledger_request_records": 4, "ledger_fx_quotes": 1}
    second = await job.sweep_once()
    assert second == {"ledger_request_records": 2, "ledger_fx_quotes": 0}
    assert await job.sweep_once() == {"ledger_request_records": 0, "ledger_fx_quotes": 0}

    assert await pool.fetchval("SELECT count(*) FROM account_requests") == 1
    assert await pool.fetchval("SELECT count(*) FROM transfer_batches") == 1
    quotes = {row[0] for row in await pool.fetch("SELECT quote_id FROM fx_quotes")}
    assert quotes == {unused_young, used_old}
    assert unused_old not in quotes
    assert await pool.fetchval("SELECT count(*) FROM transfers WHERE transfer_id = $1", hold_id) == 1
    assert await pool.fetchval("SELECT count(*) FROM exchanges") == 1


def test_ledger_retention_settings_are_bounded() -> None:
    with pytest.raises(ConfigError, match="RETENTION_LEDGER_REQUEST_RECORDS_DAYS must be between 30 and 3650"):
        load_ledger_retention(Env({"RETENTION_LEDGER_REQUEST_RECORDS_DAYS": "0"}))
