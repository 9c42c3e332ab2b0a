"""The vault's background jobs, started once the server is ready: the access-log chainer and the key-job worker
(rewrap / reindex, resumed after a restart); the retention job is the kit's loop (services/contacts/retention.py).
Each loop is bounded per round and sleeps when idle; an unexpected error is logged and the loop carries on after a
pause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation

from services.contacts.limits import (
    ACCESS_LOG_CHAIN_INTERVAL_S,
    KEY_JOB_POLL_INTERVAL_S,
)
from services.contacts.service_keys import KeysService
from services.contacts.service_subjects import SubjectsService

log = logging.getLogger(__name__)

TENANTS_PER_CHAIN_ROUND = 100
ERROR_PAUSE_S = 5.0


async def _loop(name: str, step: Callable[[], Awaitable[bool]], idle_s: float) -> None:
    """Runs ``step`` again at once while it reports more work, else after ``idle_s``."""
    while True:
        try:
            # Polling rounds are not traced: they run every few seconds and mostly find nothing.
            with suppress_instrumentation():
                more = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job failed; retrying", extra={"fields": {"job": name}})
            await asyncio.sleep(ERROR_PAUSE_S)
            continue
        if not more:
            await asyncio.sleep(idle_s)


async def access_log_chainer(subjects: SubjectsService) -> None:
    async def step() -> bool:
        return await subjects.chain_access_log(TENANTS_PER_CHAIN_ROUND) > 0

    await _loop("access_log_chainer", step, ACCESS_LOG_CHAIN_INTERVAL_S)


async def key_job_worker(keys: KeysService) -> None:
    await _loop("key_job_worker", keys.advance, KEY_JOB_POLL_INTERVAL_S)
