"""The ledger's purgeable record types and how long each is kept (docs/retention.md has the table and the reasons),
and the retention job that purges them with the kit's bounded loop (services/kit/retention.py).

Financial records (transfers, postings, chain entries and blocks, exchanges, invoices, approvals, cards and card
payments, the audit trail) have no retention setting: they are kept for at least ten years and no job deletes them, because ``VerifyChain`` recomputes every tenant's hash chain from its first entry and the
invariants recompute balances from every posting. Removing them would need an archive with a chain checkpoint,
which is not built."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from services.kit.config import Env
from services.kit.retention import PurgeTarget, RecordRetention, RetentionJob, RetentionPolicy, load_retention_policy
from services.ledger.store_retention import LedgerRetentionStore

REQUEST_RECORDS = RecordRetention("ledger_request_records", default_days=400, min_days=30, max_days=3650)
FX_QUOTES = RecordRetention("ledger_fx_quotes", default_days=30, min_days=1, max_days=3650)
LEDGER_RECORDS = (REQUEST_RECORDS, FX_QUOTES)


def load_ledger_retention(env: Env) -> RetentionPolicy:
    return load_retention_policy(env, LEDGER_RECORDS)


def ledger_retention_job(
    pool: Callable[[], asyncpg.Pool], policy: RetentionPolicy, clock: Callable[[], datetime]
) -> RetentionJob:
    store = LedgerRetentionStore(pool)
    targets = [
        PurgeTarget(REQUEST_RECORDS.record_type, store.purge_account_requests),
        PurgeTarget(REQUEST_RECORDS.record_type, store.purge_transfer_batches),
        PurgeTarget(FX_QUOTES.record_type, store.purge_unused_fx_quotes),
    ]
    return RetentionJob("ledger", policy, targets, clock=clock)
