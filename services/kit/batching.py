"""Micro-batching: concurrent calls of one process share one round trip (one statement and commit, one Redis script).

``MicroBatcher.submit(item)`` queues the item and waits for its own result. At most ``concurrency`` batches run at
a time; while they run, new items queue and form the next batch, which starts as soon as one finishes. An idle
batcher waits ``window_s`` for company (0: until the event loop has run the other ready callbacks, so calls that
arrived together go together) or until ``size_max`` items are queued. ``run_batch`` gets the items in arrival order
and returns one result per item, in the same order; if it raises, every caller of that batch gets the exception.

A caller that stops waiting (deadline, cancellation) does not stop its item: the batch it is in still runs, so an
effect (an audit row) may outlive the call that asked for it — never the reverse, since a result is only handed out
after ``run_batch`` returned (after the commit, for a database batch).

The ledger's ``GroupCommitter`` predates this and adds a per-item retry; new batchers use this one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class MicroBatcher(Generic[ItemT, ResultT]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT]]],
        *,
        window_s: float,
        size_max: int,
        concurrency: int,
    ) -> None:
        assert window_s >= 0
        assert size_max > 0
        assert concurrency > 0
        self._run_batch = run_batch
        self._window_s = window_s
        self._size_max = size_max
        self._concurrency = concurrency
        self._running = 0
        self._queue: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, item: ItemT) -> ResultT:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._queue.append((item, future))
        if self._running < self._concurrency:
            if len(self._queue) >= self._size_max:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self._window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running >= self._concurrency or not self._queue:
            return
        batch, self._queue = self._queue[: self._size_max], self._queue[self._size_max :]
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running -= 1
        # Items that queued while the batch ran form the next one at once: they have waited already.
        self._flush()

    async def _run(self, batch: Sequence[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._run_batch([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as err:
            # Each caller gets the error (the kit's interceptor maps it); the batch task itself ends cleanly.
            _fail(batch, err)
            return
        assert len(results) == len(batch), "run_batch must return one result per item"
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(batch: Sequence[tuple[object, asyncio.Future[ResultT]]], err: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(err)
