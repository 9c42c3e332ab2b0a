"""The asyncpg pool: bounded connect-with-retry at start, a transaction helper, and the pool's saturation as
Prometheus gauges (read at scrape time, so the hot path pays nothing).

Only ``store.py`` modules use the pool's connections; service code asks for a transaction scope and hands the
connection to the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

POOL_SIZE_MIN = 2
POOL_SIZE_MAX = 20
CONNECT_TIMEOUT_S = 5.0
# Server-side guard against a runaway statement holding locks; individual stores may set lower ones.
STATEMENT_TIMEOUT_MS = 15_000
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 3.0


# Errors that mean "the database is not there (yet)", as opposed to a bad URL or a bug.
RETRYABLE_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
)


class PoolCollector(Collector):
    """Exports every live pool's connections in use / idle and its maximum, labelled by database name (never by
    URL: that could carry a password)."""

    def __init__(self) -> None:
        # asyncpg pools take no weak references: closed pools are dropped on the next track() or scrape instead.
        self._pools: list[tuple[asyncpg.Pool, str]] = []
        self._lock = threading.Lock()

    def track(self, pool: asyncpg.Pool, database: str) -> None:
        with self._lock:
            self._pools = [(known, name) for known, name in self._pools if not known.is_closing()]
            self._pools.append((pool, database))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily(
            "wallet_db_pool_connections", "Postgres pool connections, by state.", labels=["database", "state"]
        )
        maximum = GaugeMetricFamily(
            "wallet_db_pool_size_max", "Most connections the pool opens.", labels=["database"]
        )
        with self._lock:
            self._pools = [(known, name) for known, name in self._pools if not known.is_closing()]
            pools = list(self._pools)
        for pool, database in pools:
            # Read from the scrape thread: plain integer reads, at worst one scrape off.
            idle = pool.get_idle_size()
            connections.add_metric([database, "in_use"], pool.get_size() - idle)
            connections.add_metric([database, "idle"], idle)
            maximum.add_metric([database], pool.get_max_size())
        yield connections
        yield maximum


POOL_COLLECTOR = PoolCollector()
REGISTRY.register(POOL_COLLECTOR)


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


class DatabaseUnavailable(Exception):
    """Postgres did not answer within the start-up budget."""


async def create_pool(
    url: str,
    *,
    min_size: int = POOL_SIZE_MIN,
    max_size: int = POOL_SIZE_MAX,
    budget_s: float = 30.0,
) -> asyncpg.Pool:
    """Connects with exponential backoff for at most ``budget_s`` seconds, then raises ``DatabaseUnavailable``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    delay_s = BACKOFF_INITIAL_S
    attempt = 0
    while True:
        attempt += 1
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT_S,
                server_settings={"statement_timeout": str(STATEMENT_TIMEOUT_MS), "timezone": "UTC"},
            )
            assert pool is not None
            POOL_COLLECTOR.track(pool, database_name(url))
            return pool
        except RETRYABLE_CONNECT_ERRORS as err:
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                raise DatabaseUnavailable(
                    f"Postgres unreachable after {attempt} attempts in {budget_s:.0f}s: {type(err).__name__}"
                ) from err
            log.warning(
                "Postgres not reachable yet; retrying",
                extra={"fields": {"attempt": attempt, "error": type(err).__name__}},
            )
            await asyncio.sleep(min(delay_s, remaining_s))
            delay_s = min(delay_s * 2, BACKOFF_MAX_S)


@asynccontextmanager
async def transaction(pool: asyncpg.Pool, *, isolation: str = "read_committed") -> AsyncIterator[asyncpg.Connection]:
    """One connection in one transaction; commits on success, rolls back on any exception."""
    async with pool.acquire() as connection, connection.transaction(isolation=isolation):
        yield connection
