"""Rate limits in Redis with GCRA (the generic cell rate algorithm), per token subject and per client IP.

One Lua script checks both limits of a call in one round trip and consumes from neither unless both allow it. Each
key stores one number, the "theoretical arrival time" (TAT) in milliseconds, with a TTL of the time it takes to drain
back to a full burst, so idle keys vanish by themselves.

**Local leases.** A Redis round trip per call was a quarter of the gateway's CPU per call and most of the latency it
adds (measured with py-spy under ``make bench BENCH=gateway``). So a check that finds plenty of room takes a small
lease: the script consumes up to ``LEASE_CALLS_MAX`` calls at once (never more than a ``LEASE_BURST_SHARE`` of the
smaller burst, never more than the buckets hold), and the next calls of the same subject and address on this process
spend the lease without asking Redis. Leased calls are consumed in Redis before they are handed out, so the limits can
only become stricter, never looser: a lease unused after ``LEASE_TTL_MS`` is dropped (its calls stay counted), which
costs a client spread over many gateway replicas at most ``LEASE_CALLS_MAX - 1`` calls of its burst per replica. A
bucket with little room left grants no lease, so the refusal comes exactly when it would without leases.

Keys are ``gateway:rl:<kind>:<HMAC-SHA-256(key, value)>``: a subject or an IP never appears in clear in Redis (an IPv4
address hashed without a key could be recovered by trying all 2³² of them).

**Fail open when Redis is down.** The limits protect capacity against abusive clients; they are not what keeps money
safe — every service authenticates and authorizes each call itself, and auth's brute-force guard is its own. Failing
closed would turn a Redis outage into a full outage for every mobile client. A Redis failure costs at most
``REDIS_TIMEOUT_S`` per call, is logged, and is counted in ``wallet_gateway_rate_limit_unavailable_total`` so it alerts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as redis_asyncio
from prometheus_client import Counter

from services.kit.errors import ResourceExhausted
from services.kit.redis_client import MAX_CONNECTIONS, KeySpace

log = logging.getLogger(__name__)

# A rate-limit check may add at most this much latency when Redis is slow or gone.
REDIS_TIMEOUT_S = 0.25

RATE_LIMIT_UNAVAILABLE = Counter(
    "wallet_gateway_rate_limit_unavailable_total",
    "Calls let through without a rate-limit check because Redis did not answer.",
)
# Calls one Redis check may consume ahead for this process (see "Local leases"), a share of the smaller burst at most,
# usable for this long. Bounded count of leases held, so a flood of distinct subjects cannot grow memory.
LEASE_CALLS_MAX = 8
LEASE_BURST_SHARE = 0.1
LEASE_TTL_MS = 1_000
LEASES_MAX = 10_000

RATE_LIMITED = Counter("wallet_gateway_rate_limited_total", "Calls refused by a rate limit.", ["limit"])

# Returns {0, granted} when allowed (granted >= 1 calls consumed from every bucket: the call itself plus a lease), else
# {i, retry_after_ms} for the first limit i that refuses (and consumes from none).
# KEYS[i]: bucket keys; ARGV: now_ms, calls wanted, then (emission_interval_ms, burst) for each key.
_GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local granted = tonumber(ARGV[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat + interval - burst * interval
  if now < allow_at then
    return {i, math.ceil(allow_at - now)}
  end
  -- Calls this bucket can take now: each moves the TAT one interval on, up to a full burst ahead of now.
  local room = math.floor((now - tat) / interval) + burst
  if room < granted then granted = room end
  tats[i] = tat
end
for i, key in ipairs(KEYS) do
  local new_tat = tats[i] + granted * tonumber(ARGV[2 * i + 1])
  redis.call('SET', key, new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
end
return {0, granted}
"""


def create_rate_limit_redis(url: str) -> redis_asyncio.Redis:
    """A Redis client whose connect and read timeouts are ``REDIS_TIMEOUT_S``: a slow Redis costs a call at most
    that (then the check fails open), never the kit's default two seconds."""
    return redis_asyncio.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        health_check_interval=30,
    )


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate_per_s`` sustained, with ``burst`` calls allowed at once from a full bucket."""

    kind: str  # "subject" or "ip": part of the key and of the metric label
    rate_per_s: float
    burst: int

    @property
    def emission_interval_ms(self) -> int:
        # Whole milliseconds: Lua prints numbers with 14 significant digits, so the script keeps to integers.
        return max(1, round(1000.0 / self.rate_per_s))

    @property
    def lease_calls(self) -> int:
        """Calls a check of this limit may consume ahead: a small share of the burst, 1 (no lease) for small ones."""
        return max(1, min(LEASE_CALLS_MAX, math.floor(self.burst * LEASE_BURST_SHARE)))


@dataclass(slots=True)
class _Lease:
    calls_left: int
    expires_at_ms: float


class RateLimiter:
    def __init__(
        self,
        client: redis_asyncio.Redis | None,
        *,
        hash_key: bytes,
        subject_limit: Limit,
        ip_limit: Limit,
        clock_ms: Callable[[], float] = lambda: time.time() * 1000.0,
    ) -> None:
        self._client = client
        self._hash_key = hash_key
        self._limits = {"subject": subject_limit, "ip": ip_limit}
        self._clock_ms = clock_ms
        self._keys = KeySpace("gateway")
        self._script = client.register_script(_GCRA_SCRIPT) if client is not None else None
        # Keyed by the call's bucket keys (subject and address together); insertion-ordered, oldest first.
        self._leases: dict[tuple[str, ...], _Lease] = {}

    def bucket_key(self, kind: str, value: str) -> str:
        digest = hmac.new(self._hash_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return self._keys.key("rl", kind, digest)

    async def check(self, *, subject: str | None, client_ip: str | None) -> None:
        """Consumes one call from each applicable bucket, or raises ``ResourceExhausted`` with ``retry_after_s``."""
        if self._script is None:
            return
        buckets = [(kind, value) for kind, value in (("subject", subject), ("ip", client_ip)) if value]
        if not buckets:
            return
        keys = [self.bucket_key(kind, value) for kind, value in buckets]
        now_ms = math.floor(self._clock_ms())
        if self._spend_lease(tuple(keys), now_ms):
            return
        wanted = min(self._limits[kind].lease_calls for kind, _ in buckets)
        args: list[int] = [now_ms, wanted]
        for kind, _ in buckets:
            limit = self._limits[kind]
            args.extend((limit.emission_interval_ms, limit.burst))
        try:
            # The client's socket timeouts bound the wait (``create_rate_limit_redis``); no extra task per call.
            result = await self._script(keys=keys, args=args)
            refused_index, answer = (int(value) for value in result)
        except (redis_asyncio.RedisError, OSError, TimeoutError) as err:
            RATE_LIMIT_UNAVAILABLE.inc()
            log.warning("rate limit not checked: Redis unavailable", extra={"fields": {"error": type(err).__name__}})
            return
        if refused_index == 0:
            assert 1 <= answer <= wanted, answer
            if answer > 1:
                self._keep_lease(tuple(keys), _Lease(answer - 1, now_ms + LEASE_TTL_MS))
            return
        retry_after_ms = answer
        kind = buckets[refused_index - 1][0]
        RATE_LIMITED.labels(kind).inc()
        raise ResourceExhausted(
            f"too many requests for this {'caller' if kind == 'subject' else 'address'}; retry later",
            metadata={"limit": kind},
            retry_after_s=retry_after_ms / 1000.0,
        )

    def _spend_lease(self, keys: tuple[str, ...], now_ms: float) -> bool:
        lease = self._leases.get(keys)
        if lease is None:
            return False
        if now_ms >= lease.expires_at_ms:
            del self._leases[keys]
            return False
        lease.calls_left -= 1
        if lease.calls_left == 0:
            del self._leases[keys]
        return True

    def _keep_lease(self, keys: tuple[str, ...], lease: _Lease) -> None:
        if len(self._leases) >= LEASES_MAX:
            # Dropping a lease only makes the limit stricter (its calls stay consumed in Redis).
            del self._leases[next(iter(self._leases))]
        self._leases[keys] = lease
