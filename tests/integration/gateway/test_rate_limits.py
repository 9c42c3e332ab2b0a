"""GCRA rate limits in real Redis: per token subject and per client IP, hashed keys, 429 + Retry-After, fail open."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as redis_asyncio
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.config import load_gateway_config
from gateway.rate_limit import LEASE_CALLS_MAX, LEASE_TTL_MS, Limit, RateLimiter
from gateway.runtime import GatewayRuntime, build_runtime
from services.kit.errors import ResourceExhausted
from tests.integration.gateway.conftest import Stack, gateway_environ

pytestmark = pytest.mark.integration

CLIENT_IP = "203.0.113.77"


def _limiter(client: redis_asyncio.Redis | None, *, burst: int, now_ms: list[float]) -> RateLimiter:
    return RateLimiter(
        client,
        hash_key=os.urandom(16),
        subject_limit=Limit("subject", rate_per_s=1.0, burst=burst),
        ip_limit=Limit("ip", rate_per_s=1.0, burst=burst * 10),
        clock_ms=lambda: now_ms[0],
    )


async def test_gcra_allows_the_burst_then_refuses_until_the_bucket_drains(redis_client: redis_asyncio.Redis) -> None:
    now_ms = [1_800_000_000_000.0]
    limiter = _limiter(redis_client, burst=3, now_ms=now_ms)
    for _ in range(3):
        await limiter.check(subject="user-1", client_ip=CLIENT_IP)
    with pytest.raises(ResourceExhausted) as refused:
        await limiter.check(subject="user-1", client_ip=CLIENT_IP)
    assert refused.value.retry_after_s == pytest.approx(1.0)
    assert refused.value.metadata == {"limit": "subject"}
    # Another subject from the same address is not limited by user-1's bucket.
    await limiter.check(subject="user-2", client_ip=CLIENT_IP)
    now_ms[0] += 1_000
    await limiter.check(subject="user-1", client_ip=CLIENT_IP)


async def test_a_refused_call_consumes_from_no_bucket(redis_client: redis_asyncio.Redis) -> None:
    now_ms = [1_800_000_000_000.0]
    limiter = RateLimiter(
        redis_client,
        hash_key=os.urandom(16),
        subject_limit=Limit("subject", rate_per_s=1.0, burst=100),
        ip_limit=Limit("ip", rate_per_s=1.0, burst=1),
        clock_ms=lambda: now_ms[0],
    )
    await limiter.check(subject="a", client_ip=CLIENT_IP)
    for _ in range(5):
        with pytest.raises(ResourceExhausted):
            await limiter.check(subject="a", client_ip=CLIENT_IP)
    subject_key = limiter.bucket_key("subject", "a")
    # One call recorded for the subject: the five refused ones did not count.
    stored = int(await redis_client.get(subject_key))
    assert stored == now_ms[0] + 1_000


async def test_keys_are_hashed_and_expire(redis_client: redis_asyncio.Redis) -> None:
    now_ms = [1_800_000_000_000.0]
    limiter = _limiter(redis_client, burst=5, now_ms=now_ms)
    subject = "0190a0c8-dead-7000-8000-00000000beef"
    await limiter.check(subject=subject, client_ip=CLIENT_IP)
    keys = [key.decode() for key in await redis_client.keys("gateway:rl:*")]
    assert limiter.bucket_key("subject", subject) in keys
    assert limiter.bucket_key("ip", CLIENT_IP) in keys
    assert not any(subject in key or CLIENT_IP in key for key in keys)
    ttl_ms = await redis_client.pttl(limiter.bucket_key("subject", subject))
    assert 0 < ttl_ms <= 1_000


def _roomy_limiter(
    client: redis_asyncio.Redis, *, burst: int, now_ms: list[float], hash_key: bytes | None = None
) -> RateLimiter:
    """Fresh buckets unless ``hash_key`` is shared: replicas of one gateway share it (GATEWAY_RATE_LIMIT_KEY)."""
    return RateLimiter(
        client,
        hash_key=hash_key or os.urandom(16),
        subject_limit=Limit("subject", rate_per_s=1.0, burst=burst),
        ip_limit=Limit("ip", rate_per_s=1.0, burst=burst),
        clock_ms=lambda: now_ms[0],
    )


async def test_a_roomy_bucket_leases_calls_so_the_next_ones_skip_redis(redis_client: redis_asyncio.Redis) -> None:
    now_ms = [1_800_000_000_000.0]
    limiter = _roomy_limiter(redis_client, burst=100, now_ms=now_ms)
    subject_key = limiter.bucket_key("subject", "steady")
    await limiter.check(subject="steady", client_ip=CLIENT_IP)
    # The first check consumed the call and a lease of LEASE_CALLS_MAX - 1 more, one second each at 1/s.
    assert int(await redis_client.get(subject_key)) == now_ms[0] + LEASE_CALLS_MAX * 1_000
    await redis_client.delete(subject_key)
    for _ in range(LEASE_CALLS_MAX - 1):
        await limiter.check(subject="steady", client_ip=CLIENT_IP)
    assert await redis_client.get(subject_key) is None, "a leased call went to Redis"
    await limiter.check(subject="steady", client_ip=CLIENT_IP)
    assert await redis_client.get(subject_key) is not None, "the lease was spent: this call had to ask Redis"


async def test_an_unused_lease_expires(redis_client: redis_asyncio.Redis) -> None:
    now_ms = [1_800_000_000_000.0]
    limiter = _roomy_limiter(redis_client, burst=100, now_ms=now_ms)
    subject_key = limiter.bucket_key("subject", "idle")
    await limiter.check(subject="idle", client_ip=CLIENT_IP)
    await redis_client.delete(subject_key)
    now_ms[0] += LEASE_TTL_MS
    await limiter.check(subject="idle", client_ip=CLIENT_IP)
    assert await redis_client.get(subject_key) is not None, "an expired lease was spent"


@pytest.mark.parametrize("burst", [1, 9, 10, 37, 100])
async def test_replicas_with_leases_never_admit_more_than_the_burst(
    redis_client: redis_asyncio.Redis, burst: int
) -> None:
    now_ms = [1_800_000_000_000.0]
    hash_key = os.urandom(16)
    replicas = [_roomy_limiter(redis_client, burst=burst, now_ms=now_ms, hash_key=hash_key) for _ in range(3)]
    admitted = 0
    refused_in_a_row = 0
    turn = 0
    while refused_in_a_row < len(replicas):
        try:
            await replicas[turn % len(replicas)].check(subject="shared", client_ip=CLIENT_IP)
        except ResourceExhausted:
            refused_in_a_row += 1
        else:
            admitted += 1
            refused_in_a_row = 0
        turn += 1
    # Every leased call is consumed in Redis before it is handed out, and all were spent: exactly the burst.
    assert admitted == burst


async def test_redis_down_fails_open_and_is_counted() -> None:
    unreachable = redis_asyncio.Redis.from_url("redis://127.0.0.1:9", socket_connect_timeout=0.2)
    limiter = _limiter(unreachable, burst=1, now_ms=[1_800_000_000_000.0])
    before = REGISTRY.get_sample_value("wallet_gateway_rate_limit_unavailable_total") or 0.0
    try:
        await limiter.check(subject="s", client_ip=CLIENT_IP)
        await limiter.check(subject="s", client_ip=CLIENT_IP)
    finally:
        await unreachable.aclose()
    assert REGISTRY.get_sample_value("wallet_gateway_rate_limit_unavailable_total") == before + 2


@pytest.fixture
async def strict_runtime(stack: Stack, redis_server_url: str) -> AsyncIterator[GatewayRuntime]:
    environ = gateway_environ(
        f"127.0.0.1:{stack.upstream.port}",
        redis_server_url,
        GATEWAY_RATE_PER_SUBJECT_PER_S="0.1",
        GATEWAY_BURST_PER_SUBJECT="2",
        GATEWAY_RATE_LIMIT_KEY=os.urandom(8).hex(),
    )
    runtime = build_runtime(load_gateway_config(environ))
    try:
        yield runtime
    finally:
        await runtime.close()


async def test_http_429_with_retry_after_per_token(stack: Stack, strict_runtime: GatewayRuntime) -> None:
    transport = httpx.ASGITransport(app=create_app(strict_runtime))
    headers = stack.auth(sub="busy-user")
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        statuses = [(await client.get("/v1/accounts/acc-1", headers=headers)).status_code for _ in range(2)]
        refused = await client.get("/v1/accounts/acc-1", headers=headers)
        other_user = await client.get("/v1/accounts/acc-1", headers=stack.auth(sub="calm-user"))
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert other_user.status_code == 200
