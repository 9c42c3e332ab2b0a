"""ResolvePhone's enumeration guard: fixed one-minute windows in Redis per caller, per end user and per tenant.

Keys hold a SHA-256 of the principal id, never a phone number, and expire with their window.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from uuid import UUID

import redis.asyncio as redis_asyncio
from redis.commands.core import AsyncScript

from services.contacts.limits import RESOLVE_WINDOW_S
from services.kit.errors import ResourceExhausted
from services.kit.redis_client import KeySpace

KEYS = KeySpace("contacts")

# One round trip and one command for every window counter of a call (a pipeline of INCR/EXPIRE pairs costs ~5x the
# client CPU in redis-py); the TTL is set when a window's counter is created.
COUNT_SCRIPT = """
local counts = {}
for index, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  counts[index] = count
end
return counts
"""


class ResolveRateLimited(ResourceExhausted):
    reason = "RATE_LIMITED"


def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class ResolveLimiter:
    def __init__(
        self,
        redis: Callable[[], redis_asyncio.Redis],
        per_caller: int,
        per_tenant: int,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._per_caller = per_caller
        self._per_tenant = per_tenant
        self._clock_s = clock_s
        self._script: AsyncScript | None = None

    async def check(self, organization_id: UUID, principal_id: str, on_behalf_of: str) -> None:
        now_s = self._clock_s()
        window = int(now_s // RESOLVE_WINDOW_S)
        retry_after_s = float(RESOLVE_WINDOW_S - now_s % RESOLVE_WINDOW_S)
        keys = [
            (KEYS.key("resolve", "tenant", str(window), _hashed(str(organization_id))), self._per_tenant),
            (
                KEYS.key("resolve", "caller", str(window), _hashed(f"{organization_id}|{principal_id}")),
                self._per_caller,
            ),
        ]
        if on_behalf_of:
            keys.append(
                (
                    KEYS.key("resolve", "user", str(window), _hashed(f"{organization_id}|{on_behalf_of}")),
                    self._per_caller,
                )
            )
        if self._script is None:
            self._script = self._redis().register_script(COUNT_SCRIPT)
        counts = await self._script(keys=[key for key, _ in keys], args=[RESOLVE_WINDOW_S * 2])
        for index, (_, limit) in enumerate(keys):
            if int(counts[index]) > limit:
                raise ResolveRateLimited("too many phone lookups; retry later", retry_after_s=retry_after_s)
