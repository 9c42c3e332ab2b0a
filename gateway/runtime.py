"""Everything the gateway's HTTP and gRPC sides share, built once at start from the configuration."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from gateway.admission import EdgeGuard
from gateway.catalog import PublicMethod, public_methods
from gateway.config import GatewayConfig
from gateway.rate_limit import Limit, RateLimiter, create_rate_limit_redis
from gateway.router import Router
from gateway.upstreams import Upstreams
from services.kit.jwks import AuthServiceJwksSource
from services.kit.token_cache import CachedTokenVerifier
from services.kit.tokens import TokenVerifier

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GatewayRuntime:
    config: GatewayConfig
    methods: dict[str, PublicMethod]
    router: Router
    upstreams: Upstreams
    guard: EdgeGuard
    redis: redis_asyncio.Redis | None

    async def close(self) -> None:
        await self.upstreams.close()
        if self.redis is not None:
            await self.redis.aclose()


def build_runtime(
    config: GatewayConfig,
    *,
    verifier: TokenVerifier | None = None,
    redis: redis_asyncio.Redis | None = None,
) -> GatewayRuntime:
    """``verifier`` defaults to one fed by auth's JWKS; ``redis`` to a client for ``REDIS_URL`` (none: no limits)."""
    methods = public_methods()
    if verifier is None:
        # Mobile clients send the same access token call after call: remember verified ones briefly, as the services
        # do (services/kit/token_cache.py), instead of checking the Ed25519 signature every time.
        verifier = CachedTokenVerifier(
            AuthServiceJwksSource(config.upstreams["auth"]),
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            refresh_min_interval_s=config.jwks_refresh_min_interval_s,
        )
    if redis is None and config.redis_url is not None:
        redis = create_rate_limit_redis(config.redis_url)
    if redis is None:
        log.warning("REDIS_URL is not set: rate limits are off")
    hash_key = config.rate_limit_key.encode() if config.rate_limit_key else os.urandom(32)
    if config.rate_limit_key is None:
        log.warning("GATEWAY_RATE_LIMIT_KEY is not set: rate-limit buckets are per gateway process")
    limiter = RateLimiter(
        redis,
        hash_key=hash_key,
        subject_limit=Limit("subject", config.rate_per_subject_per_s, config.burst_per_subject),
        ip_limit=Limit("ip", config.rate_per_ip_per_s, config.burst_per_ip),
    )
    guard = EdgeGuard(
        verifier, limiter, default_deadline_s=config.default_deadline_s, max_deadline_s=config.max_deadline_s
    )
    return GatewayRuntime(
        config=config,
        methods={method.full_method: method for method in methods},
        router=Router(methods),
        upstreams=Upstreams(config.upstreams, methods),
        guard=guard,
        redis=redis,
    )
