"""SQL of the ledger's retention purges. Only request records are purged: the idempotency records of account verbs
and batches (a retry after their retention executes again, which by then no client does) and FX quotes that expired
unused. Transfers, postings, the hash chain and its blocks, exchanges, invoices, approvals, cards and the audit
trail are never purged (docs/retention.md): the chain and the balance invariants need every entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.retention import run_purge

_PURGE_ACCOUNT_REQUESTS_SQL = """
WITH gone AS (
    DELETE FROM account_requests WHERE (organization_id, request_id) IN (
        SELECT organization_id, request_id FROM account_requests WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

# The batch's transfers stay (each keeps its own idempotency by transfer id); only the batch's replay record goes.
_PURGE_TRANSFER_BATCHES_SQL = """
WITH gone AS (
    DELETE FROM transfer_batches WHERE (organization_id, batch_id) IN (
        SELECT organization_id, batch_id FROM transfer_batches WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

# A quote an exchange used is part of that exchange's record (its rate): only unused quotes go.
_PURGE_UNUSED_FX_QUOTES_SQL = """
WITH gone AS (
    DELETE FROM fx_quotes WHERE (organization_id, quote_id) IN (
        SELECT organization_id, quote_id FROM fx_quotes WHERE expires_at < $1 AND exchange_id IS NULL
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""


class LedgerRetentionStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def purge_account_requests(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_ACCOUNT_REQUESTS_SQL, cutoff, limit)

    async def purge_transfer_batches(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_TRANSFER_BATCHES_SQL, cutoff, limit)

    async def purge_unused_fx_quotes(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_UNUSED_FX_QUOTES_SQL, cutoff, limit)
