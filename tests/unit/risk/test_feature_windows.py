"""Redis being unreachable is UNAVAILABLE for Assess (the ledger's fail-open/closed tier), never INTERNAL."""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio

from services.kit.errors import Unavailable
from services.risk.feature_windows import FeatureWindows


async def test_an_unreachable_redis_is_unavailable() -> None:
    client = redis_asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        windows = FeatureWindows(lambda: client)
        with pytest.raises(Unavailable):
            await windows.read("org", "account", "", "", 0.0, "assessment")
        with pytest.raises(Unavailable):
            await windows.store_decision("org", "assessment", {"t": 0.0})
    finally:
        await client.aclose()
