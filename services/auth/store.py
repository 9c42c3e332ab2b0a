"""The only place with SQL: asyncpg queries behind ``AuthStore.transaction()``.

``AuthTx`` is one transaction; its queries are grouped by concept in the ``store_*`` modules (identity, sessions,
keys, audit, guards, devices, passkeys) and mixed in here. Rows map to domain types at this boundary; unique violations become domain errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from services.auth.store_audit import AuditQueries
from services.auth.store_devices import DeviceQueries
from services.auth.store_guards import GuardQueries
from services.auth.store_identity import IdentityQueries
from services.auth.store_keys import KeyQueries
from services.auth.store_passkeys import PasskeyQueries
from services.auth.store_sessions import SessionQueries
from services.kit.db import transaction


class AuthTx(IdentityQueries, SessionQueries, KeyQueries, AuditQueries, GuardQueries, DeviceQueries, PasskeyQueries):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection


class AuthStore:
    """``pool`` is called at each transaction: the server creates its pool only once it starts."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AuthTx]:
        async with transaction(self._pool()) as connection:
            yield AuthTx(connection)
