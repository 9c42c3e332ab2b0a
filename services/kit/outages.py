"""Which failures inside a handler mean "a dependency is briefly gone" rather than "a bug".

Postgres restarting, a dropped connection, Redis down: the call did not happen (its transaction rolled back) and the
same request will work again soon, so the client gets ``UNAVAILABLE`` with ``RetryInfo`` — retrying is safe because
every write is idempotent — instead of ``INTERNAL``. Anything not listed here stays a bug and stays ``INTERNAL``.
"""

from __future__ import annotations

import asyncpg
import redis.exceptions

from services.kit.errors import Unavailable

RETRY_AFTER_S = 1.0

_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused or reset sockets (an OSError subclass)
    TimeoutError,  # no pool connection in time while the database is away (asyncio.TimeoutError)
    asyncpg.PostgresConnectionError,  # class 08: connection failure, connection does not exist
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a fast shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


# Modules whose OSErrors are a failed connection to a dependency (e.g. FileNotFoundError for the unix socket of a
# Postgres that is restarting), as opposed to an OSError from the service's own code.
_CONNECTING_MODULES = ("asyncpg.connect_utils", "redis.asyncio.connection")


def _raised_while_connecting(error: BaseException) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        if str(traceback.tb_frame.f_globals.get("__name__", "")).startswith(_CONNECTING_MODULES):
            return True
        traceback = traceback.tb_next
    return False


def as_outage(error: BaseException) -> Unavailable | None:
    """The ``UNAVAILABLE`` error to answer with when ``error`` is a dependency outage; None otherwise."""
    outage = (
        isinstance(error, _OUTAGE_TYPES)
        # asyncpg raises a plain InterfaceError for a connection closed under an operation.
        or (isinstance(error, asyncpg.InterfaceError) and "closed" in str(error))
        or (isinstance(error, OSError) and _raised_while_connecting(error))
    )
    if not outage:
        return None
    return Unavailable("a dependency of this service is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S)
