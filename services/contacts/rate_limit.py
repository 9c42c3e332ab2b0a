"""ResolvePhone's enumeration guard: fixed one-minute windows in Redis per caller, per end user and per tenant.

Keys hold a SHA-256 of the principal id, never a phone number, and expire with their window. ``admit_many`` counts
a whole batch of calls in one script call (the resolve batch, see ``service_directory.py``): the script increments
every key of every call in order, so each call still sees its own count, and the Redis client's per-command cost is
paid once per batch.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import redis.asyncio as redis_asyncio
from redis.commands.core import AsyncScript

from services.contacts.limits import RESOLVE_WINDOW_S
from services.kit.errors import ResourceExhausted
from services.kit.redis_client import KeySpace

KEYS = KeySpace("contacts")
# Hashed principal ids are cached (ids, not personal data): the same few callers make nearly every call.
HASHED_IDS_CACHED_MAX = 4_096

# One round trip and one command for every window counter of a batch (a pipeline of INCR/EXPIRE pairs costs ~5x the
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


@functools.lru_cache(maxsize=HASHED_IDS_CACHED_MAX)
def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ResolveCaller:
    """Whom one ResolvePhone call counts against: its tenant, its caller and the end user it acts for (if any)."""

    organization_id: UUID
    principal_id: str
    on_behalf_of: str


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

    async def check(self, caller: ResolveCaller) -> None:
        """Counts one call; ``ResolveRateLimited`` (with the seconds to wait) when a window is full."""
        (retry_after_s,) = await self.admit_many([caller])
        if retry_after_s is not None:
            raise ResolveRateLimited("too many phone lookups; retry later", retry_after_s=retry_after_s)

    async def admit_many(self, callers: Sequence[ResolveCaller]) -> list[float | None]:
        """Counts every call in one script call; for each, None when admitted or the seconds until its window
        ends when one of its windows is full (the call still counts, as any refused probe does)."""
        now_s = self._clock_s()
        window = str(int(now_s // RESOLVE_WINDOW_S))
        retry_after_s = float(RESOLVE_WINDOW_S - now_s % RESOLVE_WINDOW_S)
        keyed = [self._keys(caller, window) for caller in callers]
        flat = [key for keys in keyed for key, _ in keys]
        if self._script is None:
            self._script = self._redis().register_script(COUNT_SCRIPT)
        counts = [int(count) for count in await self._script(keys=flat, args=[RESOLVE_WINDOW_S * 2])]
        assert len(counts) == len(flat)
        admitted: list[float | None] = []
        position = 0
        for keys in keyed:
            over = any(counts[position + index] > limit for index, (_, limit) in enumerate(keys))
            admitted.append(retry_after_s if over else None)
            position += len(keys)
        return admitted

    def _keys(self, caller: ResolveCaller, window: str) -> list[tuple[str, int]]:
        organization = str(caller.organization_id)
        keys = [
            (KEYS.key("resolve", "tenant", window, _hashed(organization)), self._per_tenant),
            (
                KEYS.key("resolve", "caller", window, _hashed(f"{organization}|{caller.principal_id}")),
                self._per_caller,
            ),
        ]
        if caller.on_behalf_of:
            keys.append(
                (
                    KEYS.key("resolve", "user", window, _hashed(f"{organization}|{caller.on_behalf_of}")),
                    self._per_caller,
                )
            )
        return keys
