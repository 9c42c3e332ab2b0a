"""The start-up key check run by ``__main__`` before serving (see ``KeysService.check_keys``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg

from services.contacts.config import ContactsConfig
from services.contacts.crypto import BlindIndexer, LocalKms
from services.contacts.service_keys import KeysService
from services.contacts.store import PgVault
from services.kit import db
from services.kit.config import ServiceConfig

log = logging.getLogger(__name__)


async def check_configured_keys(service_config: ServiceConfig, config: ContactsConfig) -> list[str]:
    """Problems with the configured keys; empty when they fit, or when the database is not reachable or not
    migrated yet (the server's own start-up then reports the database, and there is no data to misread)."""
    try:
        pool = await db.create_pool(
            service_config.database_url, min_size=1, max_size=1, budget_s=service_config.startup_budget_s
        )
    except db.DatabaseUnavailable:
        return []
    try:
        keys = KeysService(
            PgVault(lambda: pool),
            LocalKms(config.kek_ring),
            BlindIndexer(config.blind_index_ring),
            lambda: datetime.now(UTC),
            config.key_job_batch_size,
        )
        try:
            return await keys.check_keys()
        except asyncpg.UndefinedTableError:
            log.warning("contacts tables missing: run migrations; key check skipped")
            return []
    finally:
        await pool.close()
