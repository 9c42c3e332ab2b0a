"""SQL of the vault's retention purges: each deletes at most ``limit`` rows written before the cut-off, in one short
transaction, skipping rows another replica is purging. Contacts themselves are not here: their retention is their
own (``retain_until``, from their purpose) and expiry tombstones them (``PgVaultTx.tombstone_contact``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.retention import run_purge

_PURGE_RESOLVE_MISSES_SQL = """
WITH gone AS (
    DELETE FROM resolve_miss WHERE miss_number IN (
        SELECT miss_number FROM resolve_miss WHERE occurred_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_NOTIFICATIONS_SQL = """
WITH gone AS (
    DELETE FROM notification WHERE (organization_id, notification_id) IN (
        SELECT organization_id, notification_id FROM notification WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""

_PURGE_IDEMPOTENT_REQUESTS_SQL = """
WITH gone AS (
    DELETE FROM idempotent_request WHERE (organization_id, request_id) IN (
        SELECT organization_id, request_id FROM idempotent_request WHERE created_at < $1
        LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM gone"""


class ContactsRetentionStore:
    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def purge_resolve_misses(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_RESOLVE_MISSES_SQL, cutoff, limit)

    async def purge_notifications(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_NOTIFICATIONS_SQL, cutoff, limit)

    async def purge_idempotent_requests(self, cutoff: datetime, limit: int) -> int:
        return await run_purge(self._pool(), _PURGE_IDEMPOTENT_REQUESTS_SQL, cutoff, limit)
