"""The vault's record types and how long each is kept (docs/retention.md has the table and the reasons), and the
retention job that purges them with the kit's bounded loop (services/kit/retention.py).

Contacts keep the retention their purpose gave them (``retain_until``, at most ``RETENTION_S_MAX``): the job
tombstones each when it passes (ciphertext and blind index deleted). The access log and erasure receipts are not
purged: the log is hash-chained from its first entry and the receipts prove erasures (docs/retention.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from services.contacts.store_retention import ContactsRetentionStore
from services.kit.config import Env
from services.kit.retention import PurgeTarget, RecordRetention, RetentionJob, RetentionPolicy, load_retention_policy

CONTACTS = "contacts_contacts"  # per-row retention: no setting
RESOLVE_MISSES = RecordRetention("contacts_resolve_misses", default_days=30, min_days=7, max_days=365)
NOTIFICATIONS = RecordRetention("contacts_notifications", default_days=730, min_days=90, max_days=3650)
IDEMPOTENT_REQUESTS = RecordRetention("contacts_idempotent_requests", default_days=400, min_days=30, max_days=3650)
CONTACTS_RECORDS = (RESOLVE_MISSES, NOTIFICATIONS, IDEMPOTENT_REQUESTS)


def load_contacts_retention(env: Env) -> RetentionPolicy:
    return load_retention_policy(env, CONTACTS_RECORDS)


def contacts_retention_job(
    pool: Callable[[], asyncpg.Pool],
    purge_expired_contacts: Callable[[int], Awaitable[int]],
    policy: RetentionPolicy,
    clock: Callable[[], datetime],
) -> RetentionJob:
    """``purge_expired_contacts`` is ``ContactsService.purge_expired`` (tombstones up to n contacts whose
    ``retain_until`` has passed, by the service's clock)."""
    store = ContactsRetentionStore(pool)

    async def tombstone_expired_contacts(now: datetime, limit: int) -> int:
        return await purge_expired_contacts(limit)

    targets = [
        PurgeTarget(CONTACTS, tombstone_expired_contacts, per_row=True),
        PurgeTarget(RESOLVE_MISSES.record_type, store.purge_resolve_misses),
        PurgeTarget(NOTIFICATIONS.record_type, store.purge_notifications),
        PurgeTarget(IDEMPOTENT_REQUESTS.record_type, store.purge_idempotent_requests),
    ]
    return RetentionJob("contacts", policy, targets, clock=clock)
