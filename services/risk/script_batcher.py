"""Concurrent Lua script calls of one risk process, sent to Redis as one pipeline (the kit's ``MicroBatcher``).

Assess makes two Redis calls (the feature read and the decision store), each a Lua script. At 64 calls in flight,
sending each on its own costs a syscall, a context switch to Redis and redis-py's per-command bookkeeping (pool
checkout, retry wrapper, timeout task) per call. Here calls that arrive together are sent as one non-transactional
pipeline of EVALSHAs (at most ``batch_max`` per pipeline, ``PIPELINES_IN_FLIGHT_MAX`` pipelines at a time; calls
arriving meanwhile form the next one): one write and one read for the whole group, each caller awaiting its own
reply. Under no load a call waits for nothing but the end of the current event-loop turn.

The pipeline does not register the scripts with redis-py (that would add a ``SCRIPT EXISTS`` round trip to every
pipeline): each script is loaded once when first used, and a call answered ``NOSCRIPT`` (Redis restarted or flushed
its script cache) reloads its script and is retried once on its own. A script error stays with its caller; a
connection error reaches every caller of the pipeline. A caller that stops waiting (its deadline) does not cancel the
pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from services.kit.batching import MicroBatcher

BATCH_MAX_DEFAULT = 128
# Pipelines in flight at once; each holds one pooled connection.
PIPELINES_IN_FLIGHT_MAX = 8


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Reply:
    """One call's reply, or the error Redis answered for that call alone."""

    value: Any = None
    error: Exception | None = None


class ScriptBatcher:
    def __init__(self, redis: Callable[[], redis_asyncio.Redis], *, batch_max: int = BATCH_MAX_DEFAULT) -> None:
        self._redis = redis
        self._loaded: set[str] = set()
        self._loading: dict[str, asyncio.Future[str]] = {}
        self._batcher: MicroBatcher[_Call, _Reply] = MicroBatcher(
            self._send, window_s=0.0, size_max=batch_max, concurrency=PIPELINES_IN_FLIGHT_MAX
        )
        self.pipelines_sent = 0

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply, as ``await script(keys=keys, args=args)`` would give it."""
        if script.sha not in self._loaded:
            await self._load(script)
        reply = await self._batcher.submit(_Call(script, tuple(keys), tuple(args)))
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def _load(self, script: AsyncScript) -> None:
        """First use in this process: make sure Redis has the script (EVALSHA in a pipeline cannot fall back to
        EVAL). Concurrent first callers share one SCRIPT LOAD."""
        pending = self._loading.get(script.sha)
        if pending is None:
            pending = asyncio.ensure_future(self._redis().script_load(script.script))
            self._loading[script.sha] = pending
        try:
            sha = await asyncio.shield(pending)
        except Exception:
            self._loading.pop(script.sha, None)  # the next call tries again
            raise
        script.sha = sha
        self._loaded.add(sha)

    async def _send(self, batch: Sequence[_Call]) -> list[_Reply]:
        self.pipelines_sent += 1
        pipe = self._redis().pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        results = await pipe.execute(raise_on_error=False)
        replies: list[_Reply] = []
        for call, result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                replies.append(await self._retry_alone(call))
            elif isinstance(result, Exception):
                replies.append(_Reply(error=result))
            else:
                replies.append(_Reply(value=result))
        return replies

    @staticmethod
    async def _retry_alone(call: _Call) -> _Reply:
        try:
            return _Reply(value=await call.script(keys=list(call.keys), args=list(call.args)))
        except Exception as err:  # handed to the caller
            return _Reply(error=err)
