import asyncio

import pytest

from services.kit import grpc_server
from services.kit.grpc_server import stop_background_tasks


async def test_a_job_that_swallows_one_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn_consumer() -> None:
        # What a job looks like when a client library turns CancelledError into its own error and the job retries.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise

    task = asyncio.create_task(stubborn_consumer())
    await asyncio.sleep(0)
    await stop_background_tasks([task])
    assert task.cancelled()
    assert swallowed == 3


async def test_a_job_that_never_stops_is_given_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grpc_server, "BACKGROUND_STOP_TIMEOUT_S", 0.3)
    monkeypatch.setattr(grpc_server, "BACKGROUND_RECANCEL_INTERVAL_S", 0.05)
    stop = asyncio.Event()

    async def immortal() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    await stop_background_tasks([task])
    assert not task.done()
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
