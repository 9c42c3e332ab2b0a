"""MicroBatcher: concurrent submits share batches, each caller gets its own result, errors reach every caller of
the failed batch only, and bounds (size, concurrency) hold."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.kit.batching import MicroBatcher


class Recorder:
    def __init__(self, *, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.running = 0
        self.running_max = 0
        self._delay_s = delay_s
        self._fail_on = fail_on

    async def run(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.running += 1
        self.running_max = max(self.running_max, self.running)
        try:
            await asyncio.sleep(self._delay_s)
            if self._fail_on is not None and self._fail_on in items:
                raise ValueError("boom")
            return [item * 10 for item in items]
        finally:
            self.running -= 1


async def test_concurrent_submits_share_a_batch_and_get_their_own_results() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.run, window_s=0.0, size_max=100, concurrency=1)
    results = await asyncio.gather(*(batcher.submit(item) for item in range(20)))
    assert results == [item * 10 for item in range(20)]
    assert recorder.batches == [list(range(20))]


async def test_items_queued_while_a_batch_runs_form_the_next_batch() -> None:
    recorder = Recorder(delay_s=0.01)
    batcher = MicroBatcher(recorder.run, window_s=0.0, size_max=100, concurrency=1)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.002)  # the first batch is running now
    rest = await asyncio.gather(*(batcher.submit(item) for item in range(2, 6)))
    assert await first == 10
    assert rest == [20, 30, 40, 50]
    assert recorder.batches == [[1], [2, 3, 4, 5]]
    assert recorder.running_max == 1


async def test_size_max_and_concurrency_bound_the_batches() -> None:
    recorder = Recorder(delay_s=0.005)
    batcher = MicroBatcher(recorder.run, window_s=0.0, size_max=3, concurrency=2)
    results = await asyncio.gather(*(batcher.submit(item) for item in range(10)))
    assert results == [item * 10 for item in range(10)]
    assert all(len(batch) <= 3 for batch in recorder.batches)
    assert sorted(item for batch in recorder.batches for item in batch) == list(range(10))
    assert recorder.running_max == 2
    assert batcher.queued == 0


async def test_a_failed_batch_fails_its_callers_only() -> None:
    recorder = Recorder(delay_s=0.005, fail_on=1)
    batcher = MicroBatcher(recorder.run, window_s=0.0, size_max=100, concurrency=1)
    doomed = [asyncio.ensure_future(batcher.submit(item)) for item in (1, 2)]
    await asyncio.sleep(0.001)
    survivor = asyncio.ensure_future(batcher.submit(3))
    for future in doomed:
        with pytest.raises(ValueError, match="boom"):
            await future
    assert await survivor == 30
    assert recorder.batches == [[1, 2], [3]]


async def test_a_caller_that_stops_waiting_does_not_stop_its_batch() -> None:
    recorder = Recorder(delay_s=0.01)
    batcher = MicroBatcher(recorder.run, window_s=0.0, size_max=100, concurrency=1)
    impatient = asyncio.ensure_future(batcher.submit(7))
    patient = asyncio.ensure_future(batcher.submit(8))
    await asyncio.sleep(0.002)
    impatient.cancel()
    assert await patient == 80
    assert recorder.batches == [[7, 8]]


async def test_the_window_lets_later_calls_join() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder.run, window_s=0.02, size_max=100, concurrency=1)
    early = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.001)
    late = asyncio.ensure_future(batcher.submit(2))
    assert (await early, await late) == (10, 20)
    assert recorder.batches == [[1, 2]]


@pytest.mark.parametrize(("window_s", "size_max", "concurrency"), [(-0.1, 1, 1), (0.0, 0, 1), (0.0, 1, 0)])
def test_bounds_are_checked(window_s: float, size_max: int, concurrency: int) -> None:
    recorder = Recorder()
    with pytest.raises(AssertionError):
        MicroBatcher(recorder.run, window_s=window_s, size_max=size_max, concurrency=concurrency)
