"""A pool connection kept between back-to-back statements of one hot path (a micro-batcher's), given back when idle.

Returning a connection to an asyncpg pool runs a reset round trip (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN
*; RESET ALL``): as much again as a batched statement. While statements keep coming, ``KeptConnection`` keeps its
connection; once none has run for ``idle_release_s`` it gives it back (reset included), so an idle process holds
nothing and the pool can close on shutdown. Only autocommit statements belong here (no transaction, no session
state is left on the connection). A statement that fails gives its connection back at once. Concurrent callers each
get a connection (the kept one, or one from the pool); at most one is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import asyncpg

IDLE_RELEASE_S_DEFAULT = 0.05


class KeptConnection:
    def __init__(self, pool: Callable[[], asyncpg.Pool], *, idle_release_s: float = IDLE_RELEASE_S_DEFAULT) -> None:
        assert idle_release_s > 0
        # A provider: the pool exists only once the server has connected.
        self._pool = pool
        self._idle_release_s = idle_release_s
        self._kept: asyncpg.Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._releases: set[asyncio.Task[None]] = set()

    async def fetch(self, sql: str, *args: object) -> Sequence[asyncpg.Record]:
        connection, self._kept = self._kept, None
        if connection is None:
            connection = await self._pool().acquire()
        try:
            rows: Sequence[asyncpg.Record] = await connection.fetch(sql, *args)
        except BaseException:
            await asyncio.shield(self._pool().release(connection))
            raise
        self._keep(connection)
        return rows

    def _keep(self, connection: asyncpg.Connection) -> None:
        if self._kept is not None:
            self._give_back(connection)  # another caller's connection is kept already
            return
        self._kept = connection
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._idle_release_s, self._release_idle)

    def _release_idle(self) -> None:
        self._timer = None
        connection, self._kept = self._kept, None
        if connection is not None:
            self._give_back(connection)

    def _give_back(self, connection: asyncpg.Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._pool().release(connection))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
