"""Risk's Redis key space ``risk:``: feature windows, event dedup, assessment idempotency and version keys.

Writes come from the ledger event stream through one Lua script per event (atomic and idempotent by event id).
Assess reads everything it needs — account and device windows, counterparties, senders, near-threshold amounts,
the payee flag, the rules and lists versions and the idempotency record — in ONE round trip (one read-only Lua
script: a single command is much cheaper for the Python client to send and parse than a nine-command pipeline). Keys hold
ids and numbers only, never personal data; every key has a TTL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis_asyncio
from redis.commands.core import AsyncScript

from services.kit.errors import Unavailable
from services.kit.ids import uuid7
from services.kit.redis_client import KeySpace
from services.risk import limits
from services.risk.features import (
    DEVICE_SEEN_FIELD_PREFIX,
    RING_DEVICE,
    RING_INFLOW,
    RING_OUTFLOW,
    WINDOWS,
    EntityState,
)
from services.risk.script_batcher import ScriptBatcher

KEYS = KeySpace("risk")

# KEYS: event, debit account, counterparties, payees, near, device, credit account, senders
# ARGV: ts_s, amount, payee, debit account, transfer id, near(0/1), has device(0/1), feature ttl, event ttl, day_s,
#       then (bucket_s, slots) per window.
_APPLY_POSTED = (
    """
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[9]))
local ts = tonumber(ARGV[1])
local day = tonumber(ARGV[10])
if fresh then
  local amount = tonumber(ARGV[2])
  local ttl = tonumber(ARGV[8])
  local function ring(key, prefix, width, slots)
    local epoch = math.floor(ts / width)
    local f = prefix .. width .. ':' .. (epoch % slots)
    local cur = redis.call('HGET', key, f)
    local c, s = 0, 0
    if cur then
      local e, cc, ss = string.match(cur, '^(%d+):(%d+):(%d+)$')
      if tonumber(e) == epoch then c = tonumber(cc); s = tonumber(ss) end
    end
    redis.call('HSET', key, f, string.format('%d:%d:%d', epoch, c + 1, s + amount))
  end
  for i = 0, 2 do
    local width = tonumber(ARGV[11 + i * 2]); local slots = tonumber(ARGV[12 + i * 2])
    ring(KEYS[2], '__OUTFLOW__', width, slots)
    if ARGV[7] == '1' then ring(KEYS[6], '__DEVICE__', width, slots) end
  end
  ring(KEYS[7], '__INFLOW__', tonumber(ARGV[15]), tonumber(ARGV[16]))
  local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0') + 1
  local mean = tonumber(redis.call('HGET', KEYS[2], 'mean') or '0')
  local m2 = tonumber(redis.call('HGET', KEYS[2], 'm2') or '0')
  local delta = amount - mean
  mean = mean + delta / n
  m2 = m2 + delta * (amount - mean)
  local last = tonumber(redis.call('HGET', KEYS[2], 'last_out_s') or '0')
  redis.call('HSET', KEYS[2], 'n', n, 'mean', string.format('%.6f', mean), 'm2', string.format('%.6f', m2),
             'last_out_s', math.max(last, ts))
  redis.call('ZADD', KEYS[3], ts, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ts - day)
  redis.call('SADD', KEYS[4], ARGV[3])
  if ARGV[6] == '1' then
    redis.call('ZADD', KEYS[5], ts, ARGV[5] .. ':' .. ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ts - day)
    redis.call('EXPIRE', KEYS[5], ttl)
  end
  redis.call('ZADD', KEYS[8], ts, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', ts - day)
  for _, k in ipairs({KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[8]}) do redis.call('EXPIRE', k, ttl) end
  if ARGV[7] == '1' then redis.call('EXPIRE', KEYS[6], ttl) end
end
local near = redis.call('ZRANGEBYSCORE', KEYS[5], ts - day, '+inf')
return {fresh and 1 or 0, near}
""".replace("__OUTFLOW__", RING_OUTFLOW)
    .replace("__DEVICE__", RING_DEVICE)
    .replace("__INFLOW__", RING_INFLOW)
)


# Every read Assess needs, in one command (one round trip, and one reply for the client to parse instead of nine).
# KEYS: account, device, counterparties, senders, near, payees, rules version, lists version, stored decision
# ARGV: since (unix s), payee id
_READ_FOR_ASSESS = """
return {
  table.concat(redis.call('HGETALL', KEYS[1]), '\\n'),
  table.concat(redis.call('HGETALL', KEYS[2]), '\\n'),
  redis.call('ZCOUNT', KEYS[3], ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[4], ARGV[1], '+inf'),
  redis.call('ZCOUNT', KEYS[5], ARGV[1], '+inf'),
  redis.call('SISMEMBER', KEYS[6], ARGV[2]),
  redis.call('GET', KEYS[7]),
  redis.call('GET', KEYS[8]),
  redis.call('GET', KEYS[9]),
}
"""

# A principal seen on a device at ARGV[2]: the device hash's `seen.<principal>` field keeps the EARLIEST time, so
# replays and out-of-order deliveries of auth events change nothing (idempotent by construction, no dedup key).
# A new principal is recorded only while the hash has fewer than ARGV[4] fields (bounded).
# KEYS: device hash. ARGV: field, seen at (unix s), ttl, fields max. Returns the stored first-seen time.
_RECORD_DEVICE_SEEN = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local seen = tonumber(ARGV[2])
if current then
  if seen < tonumber(current) then redis.call('HSET', KEYS[1], ARGV[1], seen) end
elseif redis.call('HLEN', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], ARGV[1], seen)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return redis.call('HGET', KEYS[1], ARGV[1])
"""

# Keeps the first decision for an assessment id and answers the one stored (ours, or a concurrent twin's).
_STORE_DECISION = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
return redis.call('GET', KEYS[1])
"""


@dataclass(frozen=True, slots=True)
class PostedTransfer:
    """What the windows learn from one TransferPosted event."""

    organization_id: str
    event_id: str
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    payee_id: str
    device_id: str
    amount_minor: int
    posted_at_s: float
    near_threshold: bool


@dataclass(frozen=True, slots=True)
class AppliedTransfer:
    fresh: bool
    # Near-threshold outflows of the debit account in the 24 h before the transfer: (transfer id, amount).
    near_threshold_transfers: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """The idempotency record of an assessment (no context: only its digest)."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HotRead:
    state: EntityState
    rules_version: int | None
    lists_version: str | None
    stored_decision: StoredDecision | None


@asynccontextmanager
async def _unavailable_on_redis_errors() -> AsyncIterator[None]:
    """Redis down or slow is UNAVAILABLE for Assess's caller (the ledger then applies its fail-open/closed tier),
    not INTERNAL."""
    try:
        yield
    except (OSError, redis_asyncio.RedisError) as err:
        raise Unavailable("risk's feature store is unavailable", retry_after_s=1.0) from err


def _pairs(joined: bytes) -> dict[str, str]:
    """A hash the read script sent as one newline-joined string (field, value, field, value, ...): one bulk
    reply parses far faster in Python than a nested array of a hundred."""
    if not joined:
        return {}
    flat = joined.decode().split("\n")
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def _account_key(organization_id: str, account_id: str, suffix: str = "") -> str:
    return (
        KEYS.key("a", organization_id, account_id, suffix) if suffix else KEYS.key("a", organization_id, account_id)
    )


def rules_version_key(organization_id: str) -> str:
    return KEYS.key("rules_version", organization_id)


def lists_version_key(organization_id: str) -> str:
    return KEYS.key("lists_version", organization_id)


def decision_key(organization_id: str, assessment_id: str) -> str:
    return KEYS.key("asm", organization_id, assessment_id)


class FeatureWindows:
    def __init__(self, redis: Callable[[], redis_asyncio.Redis]) -> None:
        self._redis_source = redis
        self._scripts: dict[str, AsyncScript] = {}
        # Assess's two calls (read, store decision) from concurrent requests share pipelines.
        self._batcher = ScriptBatcher(redis)

    @property
    def _redis(self) -> redis_asyncio.Redis:
        return self._redis_source()

    def _script(self, source: str) -> AsyncScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        return script

    async def apply_posted(self, transfer: PostedTransfer) -> AppliedTransfer:
        org = transfer.organization_id
        debit = transfer.debit_account_id
        device_key = KEYS.key("d", org, transfer.device_id) if transfer.device_id else KEYS.key("d", org, "none")
        window_args: list[int] = []
        for window in WINDOWS:
            window_args += [window.bucket_s, window.slots]
        result = await self._script(_APPLY_POSTED)(
            keys=[
                KEYS.key("evt", org, transfer.event_id),
                _account_key(org, debit),
                _account_key(org, debit, "cp"),
                _account_key(org, debit, "payees"),
                _account_key(org, debit, "near"),
                device_key,
                _account_key(org, transfer.credit_account_id),
                _account_key(org, transfer.credit_account_id, "snd"),
            ],
            args=[
                int(transfer.posted_at_s),
                transfer.amount_minor,
                transfer.payee_id,
                debit,
                transfer.transfer_id,
                1 if transfer.near_threshold else 0,
                1 if transfer.device_id else 0,
                limits.FEATURE_KEY_TTL_S,
                limits.EVENT_DEDUP_TTL_S,
                limits.DAY_S,
                *window_args,
            ],
        )
        near: list[tuple[str, int]] = []
        for member in result[1]:
            transfer_id, _, amount = member.decode().rpartition(":")
            near.append((transfer_id, int(amount)))
        return AppliedTransfer(fresh=bool(result[0]), near_threshold_transfers=tuple(near))

    async def record_device_seen(
        self, organization_id: str, principal_id: str, device_id: str, seen_at_s: float
    ) -> int | None:
        """Records that ``principal_id`` was seen on ``device_id`` at ``seen_at_s`` (the earliest time wins);
        returns the first-seen time now stored (None when the device hash is full)."""
        assert principal_id
        assert device_id
        stored = await self._script(_RECORD_DEVICE_SEEN)(
            keys=[KEYS.key("d", organization_id, device_id)],
            args=[
                f"{DEVICE_SEEN_FIELD_PREFIX}{principal_id}",
                int(seen_at_s),
                limits.FEATURE_KEY_TTL_S,
                limits.DEVICE_HASH_FIELDS_MAX,
            ],
        )
        return None if stored is None else int(stored)

    async def read(
        self,
        organization_id: str,
        account_id: str,
        device_id: str,
        payee_id: str,
        now_s: float,
        assessment_id: str = "",
    ) -> HotRead:
        """Everything Assess needs from Redis, in one round trip (one Lua script; reads only)."""
        since = int(now_s) - limits.DAY_S
        account_key = _account_key(organization_id, account_id)
        async with _unavailable_on_redis_errors():
            reply = await self._batcher.call(
                self._script(_READ_FOR_ASSESS),
                [
                    account_key,
                    KEYS.key("d", organization_id, device_id or "none"),
                    # The same keys as _account_key(..., suffix), built once per call (this is the hot path).
                    f"{account_key}:cp",
                    f"{account_key}:snd",
                    f"{account_key}:near",
                    f"{account_key}:payees",
                    rules_version_key(organization_id),
                    lists_version_key(organization_id),
                    decision_key(organization_id, assessment_id or "none"),
                ],
                [since, payee_id or "none"],
            )
        account, device, counterparties, senders, near, payee_known, rules_v, lists_v, stored = reply
        state = EntityState(
            account_fields=_pairs(account),
            device_fields=_pairs(device) if device_id else {},
            distinct_counterparties_24h=int(counterparties),
            distinct_senders_24h=int(senders),
            near_threshold_count_24h=int(near),
            payee_known=bool(payee_known),
        )
        return HotRead(
            state=state,
            rules_version=None if rules_v is None else int(rules_v),
            lists_version=None if lists_v is None else lists_v.decode(),
            stored_decision=None if stored is None else StoredDecision(json.loads(stored)),
        )

    async def store_decision(self, organization_id: str, assessment_id: str, body: dict[str, Any]) -> StoredDecision:
        """Keeps the first decision for an assessment id; returns the one that won (ours or a concurrent twin's)."""
        encoded = json.dumps(body, separators=(",", ":"))
        async with _unavailable_on_redis_errors():
            stored = await self._batcher.call(
                self._script(_STORE_DECISION),
                [decision_key(organization_id, assessment_id)],
                [encoded, limits.ASSESSMENT_IDEMPOTENCY_TTL_S],
            )
        return StoredDecision(json.loads(stored))

    async def publish_version(self, key: str, version: int, *, only_if_missing: bool = False) -> None:
        """Sets the rules version. A replica that found the key missing re-sets it with ``only_if_missing``, so a
        version it read from Postgres just before a publish can never overwrite the newer one."""
        await self._redis.set(key, version, ex=limits.VERSION_KEY_TTL_S, nx=only_if_missing)

    async def touch_version(self, key: str, *, only_if_missing: bool = False) -> str:
        """Marks a change with a new unique stamp (not a counter: a counter restarting after its TTL could repeat)."""
        stamp = str(uuid7())
        await self._redis.set(key, stamp, ex=limits.VERSION_KEY_TTL_S, nx=only_if_missing)
        return stamp
