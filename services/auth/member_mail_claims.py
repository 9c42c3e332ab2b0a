"""At most once per notice: a notice id is claimed in Redis (``SET NX`` with a TTL) before its mail is handed to the
sink, and released again if the sink refused it, so the redelivered event retries.

Why Redis and not a table: the events come from a Redis stream, so the claims share its fate — if Redis lost its
data, the stream entries that could be redelivered are gone too — and a TTL retires them with no purge job. The key
holds only the notice id (an event id, or a uuid derived from a reset, see ``domain_member_mail``); the value is a
constant. Never an address.

A crash between the claim and the hand-over loses that one mail (at most once, never twice); the TTL is far longer
than any redelivery (the consumer gives an entry up after a few claim periods of 30 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis.asyncio as redis_asyncio

from services.kit.redis_client import KeySpace

NOTICE_CLAIM_TTL_S = 7 * 24 * 3600
CLAIMED = "1"


class NoticeClaims:
    def __init__(self, redis: Callable[[], redis_asyncio.Redis]) -> None:
        self._redis = redis
        self._keys = KeySpace("auth")

    def _key(self, notice_id: uuid.UUID) -> str:
        return self._keys.key("member-mail", str(notice_id))

    async def claim(self, notice_id: uuid.UUID) -> bool:
        """True for the first claim of ``notice_id`` (within the TTL); False when it was claimed before."""
        claimed = await self._redis().set(self._key(notice_id), CLAIMED, nx=True, ex=NOTICE_CLAIM_TTL_S)
        return bool(claimed)

    async def release(self, notice_id: uuid.UUID) -> None:
        await self._redis().delete(self._key(notice_id))
