"""The approval-policy cache: one read per tenant however many transfers find the entry missing at once, a policy
written meanwhile wins over a read that started before it, and a failed read is retried by the next caller."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.ledger.domain_approvals import EMPTY_POLICY, ApprovalPolicy
from services.ledger.service_approvals import PolicyCache

ORG = uuid.uuid4()
WRITTEN = ApprovalPolicy((), None, "written-by-set-policy")
READ = ApprovalPolicy((), None, "read-from-the-database")


class SlowReads:
    def __init__(self, policy: ApprovalPolicy = READ) -> None:
        self.reads = 0
        self.release = asyncio.Event()
        self.policy = policy

    async def load(self) -> ApprovalPolicy:
        self.reads += 1
        await self.release.wait()
        return self.policy


async def test_concurrent_misses_share_one_read() -> None:
    cache = PolicyCache()
    reads = SlowReads()
    waiting = [asyncio.ensure_future(cache.get_or_load(ORG, reads.load)) for _ in range(100)]
    await asyncio.sleep(0)
    reads.release.set()
    assert await asyncio.gather(*waiting) == [READ] * 100
    assert reads.reads == 1
    assert await cache.get_or_load(ORG, reads.load) is READ
    assert reads.reads == 1, "cached now"


async def test_a_policy_written_during_a_read_is_not_overwritten_by_it() -> None:
    cache = PolicyCache()
    reads = SlowReads()
    waiting = asyncio.ensure_future(cache.get_or_load(ORG, reads.load))
    await asyncio.sleep(0)
    cache.put(ORG, WRITTEN)
    reads.release.set()
    assert await waiting is READ  # that caller asked before the write
    assert cache.get(ORG) is WRITTEN


async def test_a_cancelled_waiter_does_not_cancel_the_others_read() -> None:
    cache = PolicyCache()
    reads = SlowReads()
    first = asyncio.ensure_future(cache.get_or_load(ORG, reads.load))
    second = asyncio.ensure_future(cache.get_or_load(ORG, reads.load))
    await asyncio.sleep(0)
    first.cancel()
    reads.release.set()
    assert await second is READ
    assert reads.reads == 1


async def test_a_failed_read_fails_its_waiters_and_the_next_caller_reads_again() -> None:
    cache = PolicyCache()

    async def broken() -> ApprovalPolicy:
        await asyncio.sleep(0)
        raise ConnectionError("database away")

    waiting = [asyncio.ensure_future(cache.get_or_load(ORG, broken)) for _ in range(3)]
    for task in waiting:
        with pytest.raises(ConnectionError):
            await task
    assert cache.get(ORG) is None
    reads = SlowReads(EMPTY_POLICY)
    reads.release.set()
    assert await cache.get_or_load(ORG, reads.load) is EMPTY_POLICY
    assert reads.reads == 1
