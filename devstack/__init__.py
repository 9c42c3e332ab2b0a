"""The local runner: the whole suite on one machine (``make run``), and the embedded Postgres and Redis that
``make run``, ``make test`` and ``make bench`` use when ``DATABASE_URL``/``REDIS_URL`` are not set.

The names below are the package's public API (the test suite's conftest and the bench use them); the modules
behind them are private to the runner.
"""

from __future__ import annotations

from devstack.databases import database_name_for, database_url_for, ensure_databases, ensure_databases_async
from devstack.errors import DevstackError
from devstack.postgres_server import EmbeddedPostgres, start_embedded_postgres
from devstack.redis_server import EmbeddedRedis, start_embedded_redis

__all__ = [
    "DevstackError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "database_name_for",
    "database_url_for",
    "ensure_databases",
    "ensure_databases_async",
    "start_embedded_postgres",
    "start_embedded_redis",
]
