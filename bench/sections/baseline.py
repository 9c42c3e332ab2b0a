"""``baseline.sql_transfer_per_s``: how many raw-SQL transfers per second this Postgres does, measured by pgbench.

One transaction = insert one transfer row + update the two balance rows, between random accounts among
``ACCOUNTS``, with 64 clients — the work a transfer RPC must do at minimum. The ledger's figures are divided by
this number, measured in the same run on the same server, so they compare code, not machines.
"""

from __future__ import annotations

import asyncio

import asyncpg

from bench.context import BenchContext
from bench.databases import recreate_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.pgbench import run_pgbench
from bench.registry import Section, register
from devstack.databases import with_database

DATABASE = "bench_baseline"
ACCOUNTS = 10_000
CLIENTS = 64
# pgbench's own CPU: two threads keep up with 64 clients without taking much from the server.
THREADS = 2
DURATION_S = 15
# A fifth of the transactions is plenty for p50/p99, and writing fewer log lines costs the client less CPU.
LATENCY_SAMPLING_RATE = 0.2
AMOUNT_MINOR_MAX = 10_000
CONNECT_TIMEOUT_S = 10.0

# Debit and credit are distinct accounts (credit = debit shifted by 1..ACCOUNTS-1, wrapped). The two balance rows
# are updated in account order, as a ledger must, so concurrent transfers between the same accounts never deadlock.
TRANSFER_SCRIPT = """\
\\set debit random(1, :accounts)
\\set credit 1 + (:debit + random(0, :accounts - 2)) % :accounts
\\set amount random(1, :amount_max)
\\set first least(:debit, :credit)
\\set second greatest(:debit, :credit)
BEGIN;
INSERT INTO bench_transfer (debit_account_id, credit_account_id, amount_minor) VALUES (:debit, :credit, :amount);
UPDATE bench_account
  SET balance_minor = balance_minor + CASE WHEN account_id = :debit THEN -1 ELSE 1 END * CAST(:amount AS bigint)
  WHERE account_id = :first;
UPDATE bench_account
  SET balance_minor = balance_minor + CASE WHEN account_id = :debit THEN -1 ELSE 1 END * CAST(:amount AS bigint)
  WHERE account_id = :second;
END;
"""

SCHEMA = """
CREATE TABLE bench_account (
    account_id bigint PRIMARY KEY,
    balance_minor bigint NOT NULL
);
CREATE TABLE bench_transfer (
    transfer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    debit_account_id bigint NOT NULL REFERENCES bench_account,
    credit_account_id bigint NOT NULL REFERENCES bench_account,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
OPEN_ACCOUNTS = (
    "INSERT INTO bench_account (account_id, balance_minor) SELECT g, 0 FROM generate_series(1, $1::bigint) g"
)


def run(context: BenchContext) -> list[Figure]:
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(_create_fresh_database(context.postgres_server_url, database_url))
    script = context.work_dir / "baseline_transfer.sql"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(TRANSFER_SCRIPT, encoding="utf-8")
    result = run_pgbench(
        database_url=database_url,
        script=script,
        clients=CLIENTS,
        threads=THREADS,
        duration_s=DURATION_S,
        variables={"accounts": ACCOUNTS, "amount_max": AMOUNT_MINOR_MAX},
        log_dir=context.work_dir / "pgbench",
        sampling_rate=LATENCY_SAMPLING_RATE,
    )
    asyncio.run(_check_committed(database_url, result.transactions))
    print(f"  pgbench ({result.binary}): {result.transactions} transfers, {result.failed} failed")
    return [
        Figure(
            name="baseline.sql_transfer_per_s",
            value=round(result.tps, 1),
            unit="transfers/s",
            target="reference, ≈ 8,000 here",
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
        )
    ]


async def _create_fresh_database(server_url: str, database_url: str) -> None:
    await recreate_database(server_url, DATABASE)
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await database.execute(SCHEMA)
        await database.execute(OPEN_ACCOUNTS, ACCOUNTS)
        # Separately: VACUUM cannot run inside the implicit transaction of a multi-statement string.
        await database.execute("VACUUM ANALYZE bench_account")
    finally:
        await database.close()


async def _check_committed(database_url: str, transactions: int) -> None:
    """pgbench counted ``transactions``: they must all be in the table, and money must add up to zero."""
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        transfers = await database.fetchval("SELECT count(*) FROM bench_transfer")
        balance_sum = await database.fetchval("SELECT sum(balance_minor) FROM bench_account")
    finally:
        await database.close()
    if transfers < transactions:
        raise BenchError(f"pgbench counted {transactions} transfers but only {transfers} are committed")
    if balance_sum != 0:
        raise BenchError(f"balances add up to {balance_sum}, not 0: the transfer script is wrong")


SECTION = register(
    Section(
        name="baseline",
        summary="raw-SQL transfers/s with pgbench (64 clients): the number ledger figures are divided by",
        run=run,
    )
)

__all__ = ["SECTION"]
