"""Per-service databases on one Postgres server: their names, their URLs, and creating them when missing.

A server URL (``DATABASE_URL`` given to ``make run``, or the embedded server's URL) names some database to connect
to; each service gets the same URL with the database replaced by ``wallet_<svc>``. Query parameters such as
``?host=/socket/dir`` (the embedded server's unix socket) are kept.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import asyncpg

from devstack.errors import DevstackError

DATABASE_PREFIX = "wallet_"
POSTGRES_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10.0
# Database names are interpolated into CREATE DATABASE (identifiers cannot be bind parameters): allow only
# plain lower-case identifiers, well under Postgres' 63-byte limit.
_DATABASE_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def database_name_for(service: str) -> str:
    name = f"{DATABASE_PREFIX}{service}"
    if not _DATABASE_NAME_PATTERN.match(name):
        raise ValueError(f"not a usable database name: {name!r}")
    return name


def database_url_for(server_url: str, service: str) -> str:
    """The URL of ``service``'s own database on the server at ``server_url``."""
    return with_database(server_url, database_name_for(service))


def with_database(server_url: str, database: str) -> str:
    """``server_url`` with its database replaced by ``database``; everything else (host, query) is kept."""
    parts = urlsplit(server_url)
    if parts.scheme not in POSTGRES_SCHEMES:
        # Never echo the URL: it may carry a password.
        raise DevstackError(
            f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}: "
            "set it like postgresql://user@127.0.0.1:5432/postgres, or unset it to use the embedded Postgres"
        )
    # Not urlunsplit: for a URL without a host (postgresql:///postgres?host=/socket/dir, libpq's unix-socket form)
    # it drops the "//" and returns postgresql:/<database>, which libpq (pgbench) rejects.
    url = f"{parts.scheme}://{parts.netloc}/{database}"
    if parts.query:
        url += f"?{parts.query}"
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


async def ensure_databases_async(server_url: str, names: Iterable[str]) -> list[str]:
    """Create each database in ``names`` that does not exist yet; returns the ones created."""
    wanted = list(names)
    for name in wanted:
        if not _DATABASE_NAME_PATTERN.match(name):
            raise ValueError(f"not a usable database name: {name!r}")
    try:
        connection = await asyncpg.connect(server_url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise DevstackError(
            f"cannot connect to Postgres to create the service databases ({type(err).__name__}: {err}): "
            "check that DATABASE_URL points to a running server, or unset it to use the embedded one"
        ) from err
    created: list[str] = []
    try:
        for name in wanted:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                continue
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                # Another process (a parallel test session) created it between our check and our CREATE.
                continue
            created.append(name)
    except asyncpg.InsufficientPrivilegeError as err:
        raise DevstackError(
            f"the DATABASE_URL user may not create databases ({err}): "
            "grant it CREATEDB, or create the wallet_* databases by hand"
        ) from err
    finally:
        await connection.close()
    return created


def ensure_databases(server_url: str, names: Iterable[str]) -> list[str]:
    """Synchronous :func:`ensure_databases_async`, for callers without a running event loop."""
    return asyncio.run(ensure_databases_async(server_url, names))
