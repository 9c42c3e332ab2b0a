"""The Redis client factory and the per-service key prefix.

Each service owns its keys under ``<service>:``; nothing personal is ever stored in Redis (blind indexes and ids
only).
"""

from __future__ import annotations

import redis.asyncio as redis_asyncio

SOCKET_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 64


def create_redis(url: str) -> redis_asyncio.Redis:
    return redis_asyncio.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        health_check_interval=30,
    )


class KeySpace:
    """Builds keys under one service's prefix: ``KeySpace("auth").key("lockout", account_id)``."""

    def __init__(self, service: str) -> None:
        assert service.isidentifier(), service
        self.prefix = f"{service}:"

    def key(self, *parts: str) -> str:
        assert parts
        assert all(":" not in part for part in parts[:-1])
        return self.prefix + ":".join(parts)
