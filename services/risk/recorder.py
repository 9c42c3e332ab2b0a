"""Asynchronous, batched recording of assessments, so Assess does not wait for one INSERT per call.

Trade-off (README.md): Assess hands its record to a bounded in-process queue and answers; a flusher writes the
queue in batches (one ``executemany`` per batch) every ``RECORDER_FLUSH_INTERVAL_S``. Nothing is dropped silently:
when the queue is full, Assess waits for room (back-pressure shows as latency, then as a DEADLINE_EXCEEDED the
ledger handles with its fail-open/closed tier); a failed batch stays queued and is retried with bounded backoff;
stopping the service flushes what is queued. What can be lost is what was queued when the process died abruptly
(at most one flush interval of traffic in normal operation); the decision itself was already stored in Redis for
idempotency, and ``wallet_risk_recorder_*`` metrics show queue depth and failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import Counter, Gauge

from services.risk import limits
from services.risk.domain import AssessmentRecord

log = logging.getLogger(__name__)

RECORDER_QUEUE_DEPTH = Gauge("wallet_risk_recorder_queue_depth", "Assessments waiting to be written.")
RECORDER_WRITTEN = Counter("wallet_risk_recorder_written_total", "Assessments written to Postgres.")
RECORDER_FAILURES = Counter("wallet_risk_recorder_failures_total", "Batches that failed and were retried.")
RECORDER_LOST = Counter(
    "wallet_risk_recorder_lost_total", "Assessments given up after repeated failures (logged with their ids)."
)
# A batch that keeps failing (e.g. a bug in one row) must not block every later record forever.
BATCH_ATTEMPTS_MAX = 8


class AssessmentSink(Protocol):
    async def insert_batch(self, records: Sequence[AssessmentRecord]) -> None: ...


class AssessmentRecorder:
    def __init__(self, sink: AssessmentSink, *, queue_max: int = limits.RECORDER_QUEUE_MAX) -> None:
        self._sink = sink
        self._queue: asyncio.Queue[AssessmentRecord] = asyncio.Queue(maxsize=queue_max)
        self._idle = asyncio.Event()
        self._idle.set()

    async def submit(self, record: AssessmentRecord) -> None:
        """Queues a record; waits for room when the queue is full (never drops)."""
        self._idle.clear()
        await self._queue.put(record)
        RECORDER_QUEUE_DEPTH.set(self._queue.qsize())

    async def flushed(self) -> None:
        """Returns once everything submitted so far is written (tests, shutdown)."""
        while not self._queue.empty() or not self._idle.is_set():
            self._idle.clear()
            await self._idle.wait()

    async def run(self) -> None:
        """Writes batches until cancelled; on cancel, writes what is left first."""
        backoff_s = limits.RECORDER_FLUSH_INTERVAL_S
        batch: list[AssessmentRecord] = []
        attempts = 0
        try:
            while True:
                if not batch:
                    batch.append(await self._queue.get())
                while len(batch) < limits.RECORDER_BATCH_MAX and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    await self._sink.insert_batch(batch)
                except Exception as err:  # retried, then given up loudly: never a silent loss
                    attempts += 1
                    RECORDER_FAILURES.inc()
                    log.warning(
                        "recording assessments failed; retrying", extra={"fields": {"error": type(err).__name__}}
                    )
                    if attempts >= BATCH_ATTEMPTS_MAX:
                        self._give_up(batch, err)
                        batch, attempts = [], 0
                        continue
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, limits.RECORDER_RETRY_BACKOFF_MAX_S)
                    continue
                attempts = 0
                RECORDER_WRITTEN.inc(len(batch))
                batch = []
                backoff_s = limits.RECORDER_FLUSH_INTERVAL_S
                RECORDER_QUEUE_DEPTH.set(self._queue.qsize())
                if self._queue.empty():
                    self._idle.set()
                if self._queue.qsize() < limits.RECORDER_BATCH_MAX:
                    # Let a batch gather: one INSERT per interval, not one per record at moderate traffic.
                    await asyncio.sleep(limits.RECORDER_FLUSH_INTERVAL_S)
        except asyncio.CancelledError:
            await self._drain(batch)
            raise

    @staticmethod
    def _give_up(batch: list[AssessmentRecord], err: Exception) -> None:
        RECORDER_LOST.inc(len(batch))
        log.error(
            "assessments could not be recorded",
            extra={
                "fields": {
                    "error": type(err).__name__,
                    "assessment_ids": [record.result.assessment_id for record in batch],
                }
            },
        )

    async def _drain(self, batch: list[AssessmentRecord]) -> None:
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._sink.insert_batch(batch)
            RECORDER_WRITTEN.inc(len(batch))
        self._idle.set()
