"""The batched assessment recorder with a fake sink (the Postgres edge): batches, back-pressure instead of drops,
retries after failures, and a final flush when stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.risk.domain import AssessmentContext, AssessmentRecord, AssessmentResult, Decision
from services.risk.recorder import AssessmentRecorder


def _record(number: int) -> AssessmentRecord:
    context = AssessmentContext("a", "b", number, "EUR")
    result = AssessmentResult(str(number), Decision.ALLOW, 0, (), 0, 1, 0, True, 0.0, context.digest())
    return AssessmentRecord("org", result, context, {})


class FlakySink:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[str]] = []

    async def insert_batch(self, records: Sequence[AssessmentRecord]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database went away")
        self.batches.append([record.result.assessment_id for record in records])


async def test_records_are_written_in_batches_after_failures_and_none_are_lost() -> None:
    sink = FlakySink(failures=2)
    recorder = AssessmentRecorder(sink, queue_max=10)
    task = asyncio.create_task(recorder.run())
    # More than the queue holds: submit waits for room instead of dropping.
    await asyncio.wait_for(asyncio.gather(*(recorder.submit(_record(i)) for i in range(25))), timeout=10)
    await asyncio.wait_for(recorder.flushed(), timeout=10)
    written = [assessment_id for batch in sink.batches for assessment_id in batch]
    assert sorted(written, key=int) == [str(i) for i in range(25)]
    assert len(sink.batches) < 25
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_stopping_flushes_what_is_queued() -> None:
    sink = FlakySink()
    recorder = AssessmentRecorder(sink)
    task = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)
    for i in range(5):
        await recorder.submit(_record(i))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sorted(a for batch in sink.batches for a in batch) == [str(i) for i in range(5)]
