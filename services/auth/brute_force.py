"""Brute-force protection: failure counters per account and per source, in Redis under ``auth:bf:`` and copied
to Postgres on every write, so the fallback while Redis is unreachable starts from the counts Redis had (protection
is never lifted: reads take the stricter of both copies, a Redis failure logs a warning and counts in a metric, and
if Postgres fails too the sign-in fails).

Counter keys are keyed HMACs of ``organization id + login`` and of the source address, so Redis never holds an
email or an IP in clear. Expiry is decided against the injected clock (``locked_until`` is stored); Redis TTLs only
bound memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as redis_asyncio
from prometheus_client import Counter

from services.auth import domain
from services.auth.domain import FailureCounter, Thresholds
from services.auth.sealing import PURPOSE_COUNTERS, KeyedHash
from services.auth.service import AuthStorePort
from services.kit.redis_client import KeySpace

log = logging.getLogger(__name__)

REDIS_FALLBACKS = Counter(
    "wallet_auth_brute_force_redis_fallback_total", "Brute-force counter operations served from Postgres.", ["op"]
)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis_asyncio.RedisError, OSError, ConnectionError, TimeoutError)
# Redis keeps a counter a little longer than the longest state it can hold.
TTL_MARGIN_S = 60


@dataclass(frozen=True, slots=True)
class CounterKeys:
    account: bytes
    source: bytes


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    account: FailureCounter
    account_locked_now: bool
    source_locked_now: bool


class LoginGuard:
    def __init__(
        self,
        redis: Callable[[], redis_asyncio.Redis],
        store: AuthStorePort,
        master_key: bytes,
        *,
        account: Thresholds,
        source: Thresholds,
        clock: Callable[[], float],
    ) -> None:
        self._redis = redis
        self._store = store
        self._hash = KeyedHash(master_key, PURPOSE_COUNTERS)
        self._keys = KeySpace("auth")
        self._account = account
        self._source = source
        self._clock = clock

    def keys(self, organization_id: str, login: str, source_ip: str) -> CounterKeys:
        return CounterKeys(
            account=self._hash.digest(f"account:{organization_id}:{domain.normalize_email(login)}"),
            source=self._hash.digest(f"source:{source_ip}"),
        )

    def _redis_key(self, key: bytes) -> str:
        return self._keys.key("bf", key.hex())

    # --- reads ------------------------------------------------------------------------------------------------

    async def _read_redis(self, keys: Sequence[bytes]) -> list[FailureCounter] | None:
        """Each key's counter in Redis (one pipelined round trip), or None while Redis is unreachable."""
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self._redis_key(key), ["f", "n", "l"])
                rows = await pipe.execute()
        except REDIS_ERRORS:
            self._warn("read")
            return None
        return [
            FailureCounter(
                int(failures or 0),
                float(next_allowed) if next_allowed else None,
                float(locked) if locked else None,
            )
            for failures, next_allowed, locked in rows
        ]

    async def _read(self, keys: Sequence[bytes]) -> list[FailureCounter]:
        """The stricter of the Redis counter and its Postgres copy, per key.

        Every write goes to both (see ``_write``), so Postgres holds the counts Redis had before an outage, and
        Redis misses only what happened while it was down: taking the stricter never lifts a delay or a lock that
        either side knows of — neither when Redis goes away nor when it comes back with older counts.
        """
        from_redis = await self._read_redis(keys)
        async with self._store.transaction() as tx:
            from_postgres = await tx.get_failure_counters(keys, self._clock())
        if from_redis is None:
            return [from_postgres.get(key, FailureCounter()) for key in keys]
        return [
            domain.stricter_counter(counter, from_postgres.get(key, FailureCounter()))
            for key, counter in zip(keys, from_redis, strict=True)
        ]

    async def check(self, keys: CounterKeys) -> None:
        """Raises AccountLocked while the account or the source must wait."""
        now_s = self._clock()
        account, source = await self._read([keys.account, keys.source])
        waits = [domain.refusal_s(account, now_s), domain.refusal_s(source, now_s)]
        longest = max((wait for wait in waits if wait is not None), default=None)
        if longest is not None:
            raise domain.AccountLocked(longest)

    async def locked_until(self, keys: Sequence[bytes]) -> list[float | None]:
        """Lock expiry of each account key (None when not locked): one Redis round trip and one query for a page."""
        now_s = self._clock()
        counters = await self._read(keys) if keys else []
        return [
            counter.locked_until if counter.locked_until is not None and counter.locked_until > now_s else None
            for counter in counters
        ]

    # --- writes -----------------------------------------------------------------------------------------------

    async def _write(self, key: bytes, counter: FailureCounter, thresholds: Thresholds) -> None:
        """Redis and its Postgres copy, always both: the copy must be current the moment Redis goes away."""
        now_s = self._clock()
        expires_at_s = max(counter.locked_until or 0.0, now_s + thresholds.window_s) + TTL_MARGIN_S
        fields: dict[
            str | bytes | bytearray | memoryview[int] | int | float,
            str | bytes | bytearray | memoryview[int] | int | float,
        ] = {
            "f": str(counter.failures),
            "n": str(counter.next_allowed_at or ""),
            "l": str(counter.locked_until or ""),
        }
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.hset(self._redis_key(key), mapping=fields)
                pipe.expire(self._redis_key(key), max(1, int(expires_at_s - now_s)))
                await pipe.execute()
        except REDIS_ERRORS:
            self._warn("write")
        async with self._store.transaction() as tx:
            await tx.put_failure_counter(key, counter, expires_at_s)

    async def _fail(self, key: bytes, thresholds: Thresholds) -> tuple[FailureCounter, bool]:
        now_s = self._clock()
        (before,) = await self._read([key])
        after = domain.after_failure(before, now_s, thresholds)
        await self._write(key, after, thresholds)
        return after, domain.just_locked(before, after, now_s)

    async def record_failure(self, keys: CounterKeys) -> FailureOutcome:
        account, account_locked = await self._fail(keys.account, self._account)
        _, source_locked = await self._fail(keys.source, self._source)
        return FailureOutcome(account, account_locked, source_locked)

    async def clear(self, key: bytes) -> None:
        """After a successful sign-in, or an admin's unlock."""
        try:
            await self._redis().delete(self._redis_key(key))
        except REDIS_ERRORS:
            self._warn("clear")
        # The fallback copy goes too, so an unlock during an outage holds once Redis is back.
        async with self._store.transaction() as tx:
            await tx.delete_failure_counter(key)

    def _warn(self, op: str) -> None:
        REDIS_FALLBACKS.labels(op).inc()
        log.warning("Redis unreachable; brute-force counters served from Postgres", extra={"fields": {"op": op}})
