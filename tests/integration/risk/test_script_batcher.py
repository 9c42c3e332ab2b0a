"""The script batcher against a real Redis: concurrent calls share pipelines yet each gets its own reply, script
errors stay with their caller, a flushed script cache is recovered, and Redis going away reaches every caller."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ResponseError

from services.risk.script_batcher import ScriptBatcher

pytestmark = pytest.mark.integration

ECHO = "redis.call('SET', KEYS[1], ARGV[1], 'EX', 60) return redis.call('GET', KEYS[1])"
FAIL_ON_BOOM = "if ARGV[1] == 'boom' then return redis.error_reply('BOOM') end return ARGV[1]"


async def test_concurrent_calls_get_their_own_replies_in_few_pipelines(redis_client: redis_asyncio.Redis) -> None:
    batcher = ScriptBatcher(lambda: redis_client, batch_max=16)
    script = redis_client.register_script(ECHO)
    prefix = f"test:batcher:{uuid.uuid4().hex}"
    replies = await asyncio.gather(*(batcher.call(script, [f"{prefix}:{i}"], [f"v{i}"]) for i in range(100)))
    assert replies == [f"v{i}".encode() for i in range(100)]
    # 100 calls made in one loop turn went out as ceil(100 / 16) pipelines, not 100 round trips.
    assert batcher.pipelines_sent == 7


async def test_a_script_error_fails_only_its_caller(redis_client: redis_asyncio.Redis) -> None:
    batcher = ScriptBatcher(lambda: redis_client)
    script = redis_client.register_script(FAIL_ON_BOOM)
    results = await asyncio.gather(
        batcher.call(script, [], ["ok-1"]),
        batcher.call(script, [], ["boom"]),
        batcher.call(script, [], ["ok-2"]),
        return_exceptions=True,
    )
    assert results[0] == b"ok-1"
    assert isinstance(results[1], ResponseError)
    assert results[2] == b"ok-2"


async def test_a_flushed_script_cache_is_reloaded(redis_client: redis_asyncio.Redis) -> None:
    batcher = ScriptBatcher(lambda: redis_client)
    # A script no other test uses, so flushing it races with nobody.
    script = redis_client.register_script(f"return ARGV[1] .. '{uuid.uuid4().hex}'")
    first = await batcher.call(script, [], ["a"])
    await redis_client.script_flush()
    again = await asyncio.gather(batcher.call(script, [], ["a"]), batcher.call(script, [], ["b"]))
    assert again[0] == first
    assert again[1].startswith(b"b")


async def test_redis_unreachable_reaches_every_caller(redis_client: redis_asyncio.Redis) -> None:
    clients = [redis_client]
    batcher = ScriptBatcher(lambda: clients[0])
    script = redis_client.register_script(ECHO)
    await batcher.call(script, [f"test:batcher:{uuid.uuid4().hex}"], ["loaded"])
    unreachable = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    clients[0] = unreachable
    results = await asyncio.gather(*(batcher.call(script, ["k"], ["v"]) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, (OSError, redis_asyncio.RedisError)) for result in results)
    await unreachable.aclose()


async def test_a_caller_that_gives_up_does_not_cancel_the_others(redis_client: redis_asyncio.Redis) -> None:
    batcher = ScriptBatcher(lambda: redis_client)
    script = redis_client.register_script(ECHO)
    key = f"test:batcher:{uuid.uuid4().hex}"
    await batcher.call(script, [f"{key}:warm"], ["w"])
    impatient = asyncio.ensure_future(batcher.call(script, [f"{key}:a"], ["a"]))
    patient = asyncio.ensure_future(batcher.call(script, [f"{key}:b"], ["b"]))
    await asyncio.sleep(0)  # both calls are queued
    impatient.cancel()
    assert await patient == b"b"
    # The pipeline ran as a whole: the impatient caller's write happened too.
    assert await redis_client.get(f"{key}:a") == b"a"
