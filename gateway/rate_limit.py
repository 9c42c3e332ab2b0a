"""Rate limits in Redis with GCRA (the generic cell rate algorithm), per token subject and per client IP.

One Lua script checks both limits of a call in one round trip and consumes from neither unless both allow it. Each
key stores one number, the "theoretical arrival time" (TAT) in milliseconds, with a TTL of the time it takes to drain
back to a full burst, so idle keys vanish by themselves.

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
RATE_LIMITED = Counter("wallet_gateway_rate_limited_total", "Calls refused by a rate limit.", ["limit"])

# Returns {0, 0} when allowed (and records both), else {1, retry_after_ms} for the first limit that refuses.
# KEYS[i]: bucket keys; ARGV: now_ms, then (emission_interval_ms, burst) for each key.
_GCRA_SCRIPT = """
local now = tonumber(ARGV[1])
local new_tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return {i, math.ceil(allow_at - now)}
  end
  new_tats[i] = new_tat
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, new_tats[i], 'PX', math.max(1, math.ceil(new_tats[i] - now)))
end
return {0, 0}
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
        args: list[int] = [math.floor(self._clock_ms())]
        for kind, _ in buckets:
            limit = self._limits[kind]
            args.extend((limit.emission_interval_ms, limit.burst))
        try:
            # The client's socket timeouts bound the wait (``create_rate_limit_redis``); no extra task per call.
            result = await self._script(keys=keys, args=args)
            refused_index, retry_after_ms = (int(value) for value in result)
        except (redis_asyncio.RedisError, OSError, TimeoutError) as err:
            RATE_LIMIT_UNAVAILABLE.inc()
            log.warning("rate limit not checked: Redis unavailable", extra={"fields": {"error": type(err).__name__}})
            return
        if refused_index == 0:
            return
        kind = buckets[refused_index - 1][0]
        RATE_LIMITED.labels(kind).inc()
        raise ResourceExhausted(
            f"too many requests for this {'caller' if kind == 'subject' else 'address'}; retry later",
            metadata={"limit": kind},
            retry_after_s=retry_after_ms / 1000.0,
        )
