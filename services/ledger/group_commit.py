"""Group commit: concurrent single-transfer calls of this process share one database transaction.

At most ``concurrency`` groups commit at a time (every group of a tenant ends by locking the tenant's chain head, so
more would only queue inside Postgres holding connections and row locks). While they commit, new calls queue up and
form the next group, which starts as soon as a commit finishes; an idle committer waits at most ``window_s`` for
company (or until ``size_max`` calls are queued). A group is applied by ``commit_transfers`` in one transaction with
array parameters, and each caller gets its own outcome: a declined transfer does not fail its neighbours (decisions
are made per item under the row locks before anything is written).

While groups keep coming, the committer keeps its database connection instead of returning it to the pool after
every group: a pool release costs a reset round trip. It gives the connection back as soon as no group is queued,
so an idle process holds nothing (and the pool can close when the server stops). A group that fails as a whole at the database (a unique violation when two replicas race on
one transfer id, a constraint) is retried item by item, so one bad item cannot take the others down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from services.ledger import limits
from services.ledger.commit import Clock, CommitStore, Outcome, TransferItem, commit_transfers

log = logging.getLogger(__name__)


class GroupCommitter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: CommitStore,
        clock: Clock,
        *,
        window_s: float = limits.GROUP_COMMIT_WINDOW_S,
        size_max: int = limits.GROUP_COMMIT_SIZE_MAX,
        concurrency: int = limits.GROUP_COMMIT_CONCURRENCY,
    ) -> None:
        assert window_s >= 0
        assert size_max > 0
        self._pool = pool
        self._store = store
        self._clock = clock
        self._window_s = window_s
        self._size_max = size_max
        self._concurrency = concurrency
        self._committing = 0
        self._queue: list[tuple[TransferItem, asyncio.Future[Outcome]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Connections kept between groups while calls keep coming (at most `concurrency`).
        self._idle: list[asyncpg.Connection] = []

    async def submit(self, item: TransferItem) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((item, future))
        if self._committing < self._concurrency:
            if len(self._queue) >= self._size_max:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self._window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._committing >= self._concurrency or not self._queue:
            return
        group, self._queue = self._queue[: self._size_max], self._queue[self._size_max :]
        self._committing += 1
        task = asyncio.get_running_loop().create_task(self._commit_group(group))
        self._tasks.add(task)
        task.add_done_callback(self._committed)

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._committing -= 1
        # Calls that queued while we committed form the next group at once: they have waited already.
        self._flush()
        if self._committing == 0 and not self._queue and self._idle:
            idle, self._idle = self._idle, []
            release = asyncio.get_running_loop().create_task(self._release(idle))
            self._tasks.add(release)
            release.add_done_callback(self._tasks.discard)

    async def _release(self, connections: list[asyncpg.Connection]) -> None:
        for connection in connections:
            await self._pool.release(connection)

    async def _commit_group(self, group: Sequence[tuple[TransferItem, asyncio.Future[Outcome]]]) -> None:
        items = [item for item, _ in group]
        try:
            outcomes = await self._commit(items)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            if len(group) == 1:
                _fail(group, err)
                return
            log.warning(
                "group commit failed; retrying items one by one",
                extra={"fields": {"error": type(err).__name__, "size": len(group)}},
            )
            for pair in group:
                await self._commit_group([pair])
            return
        except asyncio.CancelledError as err:
            _fail(group, err)
            raise
        except Exception as err:
            # Each caller gets the error (the kit maps it to INTERNAL); the group task itself ends cleanly.
            log.exception("group commit failed")
            _fail(group, err)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _commit(self, items: list[TransferItem]) -> list[Outcome]:
        for attempt in range(limits.GROUP_COMMIT_ATTEMPTS_MAX):
            try:
                return await self._commit_once(items)
            except asyncpg.UniqueViolationError:
                # Another replica inserted one of these transfer ids meanwhile; the retry replays it.
                if attempt + 1 == limits.GROUP_COMMIT_ATTEMPTS_MAX:
                    raise
        raise AssertionError("unreachable")

    async def _commit_once(self, items: list[TransferItem]) -> list[Outcome]:
        if self._idle:
            connection = self._idle.pop()
        else:
            connection = await self._pool.acquire()
            try:
                await self._store.prefer_generic_plans(connection, local=False)
            except BaseException:
                await asyncio.shield(self._pool.release(connection))
                raise
        try:
            async with connection.transaction(isolation="read_committed"):
                outcomes = await commit_transfers(connection, self._store, items, self._clock)
        except asyncpg.PostgresError:
            # The transaction was rolled back; the connection itself is fine.
            self._idle.append(connection)
            raise
        except BaseException:
            # A broken connection (or a cancelled task mid-statement): let the pool deal with it.
            await asyncio.shield(self._pool.release(connection))
            raise
        self._idle.append(connection)
        return outcomes


def _fail(group: Sequence[tuple[TransferItem, asyncio.Future[Outcome]]], err: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(err)
