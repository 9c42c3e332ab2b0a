"""The aio gRPC server bootstrap every service uses.

Start: bind (port 0 allowed) → health NOT_SERVING → metrics endpoint → connect Postgres and Redis with bounded
backoff → SERVING. Stop (SIGTERM): readiness NOT_SERVING (liveness stays SERVING so Kubernetes does not kill a
draining pod) → optional drain delay while load balancers notice → ``server.stop(grace)`` lets in-flight calls
finish and refuses new ones → close pools.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import redis.asyncio as redis_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.kit import db
from services.kit.config import ServiceConfig
from services.kit.interceptors import KitRegistrar, WalletServerInterceptor
from services.kit.metrics import MetricsServer, start_metrics_server
from services.kit.redis_client import create_redis
from services.kit.tokens import TokenVerifier

log = logging.getLogger(__name__)

LIVENESS_SERVICE = "liveness"
# Young-generation collection threshold once serving (CPython's default is 700). Every call allocates hundreds of
# short-lived objects, nearly all freed by reference counting; collecting every 700 allocations cost ~5 % of a busy
# server's CPU (py-spy, ledger transfers) for no memory gain.
GC_YOUNG_THRESHOLD = 20_000
# gRPC message size limits: large enough for a 1,000-transfer batch, small enough to refuse abuse.
MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_SEND_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Registration:
    """One gRPC service to serve: its full proto name, the generated ``add_*_to_server`` function and servicer."""

    service_name: str
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object


@dataclass(slots=True)
class Runtime:
    """The resources of one service process, filled in as the server starts."""

    config: ServiceConfig
    verifier: TokenVerifier | None
    pool_or_none: asyncpg.Pool | None = None
    redis_or_none: redis_asyncio.Redis | None = None
    ready: bool = False
    background_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.pool_or_none is not None, "Postgres pool used before the server is ready"
        return self.pool_or_none

    @property
    def redis(self) -> redis_asyncio.Redis:
        assert self.redis_or_none is not None, "Redis used before the server is ready"
        return self.redis_or_none


class WalletServer:
    def __init__(
        self,
        runtime: Runtime,
        registrations: Sequence[Registration],
        *,
        use_database: bool = True,
        use_redis: bool = True,
    ) -> None:
        self.runtime = runtime
        self._registrations = list(registrations)
        self._use_database = use_database
        self._use_redis = use_redis
        self._dependency_budget_s = runtime.config.startup_budget_s
        self.health = health.aio.HealthServicer()
        self._metrics: MetricsServer | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port = 0
        self._stopped = False

    @property
    def readiness_names(self) -> list[str]:
        return ["", *(registration.service_name for registration in self._registrations)]

    async def _set_readiness(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in self.readiness_names:
            await self.health.set(name, status)

    async def start(self) -> None:
        config = self.runtime.config
        # No grpc.aio interceptors: the kit's wrapper (tracing included) is built into each wallet handler at
        # registration, which costs a fraction of an interceptor chain per call (services/kit/interceptors.py).
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
                ("grpc.so_reuseport", int(config.so_reuseport)),
            ],
        )
        registrar = KitRegistrar(
            server,
            WalletServerInterceptor(config.service_name, self.runtime.verifier, is_ready=lambda: self.runtime.ready),
        )
        for registration in self._registrations:
            registration.add_to_server(registration.servicer, registrar)  # type: ignore[arg-type]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        service_names = [r.service_name for r in self._registrations]
        reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        await self._set_readiness(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        self.port = server.add_insecure_port(f"{config.grpc_host}:{config.grpc_port}")
        if self.port == 0:
            raise OSError(f"cannot bind {config.grpc_host}:{config.grpc_port} (is the port in use?)")
        await server.start()
        self._server = server
        self._metrics = start_metrics_server(config.grpc_host, config.metrics_port)
        self.metrics_port = self._metrics.port
        log.info("gRPC server listening", extra={"fields": {"port": self.port, "metrics_port": self.metrics_port}})
        await self._connect_dependencies()
        _tune_garbage_collector()
        self.runtime.ready = True
        await self._set_readiness(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"fields": {"services": service_names}})

    async def _connect_dependencies(self) -> None:
        config = self.runtime.config
        if self._use_database:
            self.runtime.pool_or_none = await db.create_pool(config.database_url, budget_s=self._dependency_budget_s)
        if self._use_redis:
            client = create_redis(config.redis_url)
            await _wait_for_redis(client, self._dependency_budget_s)
            self.runtime.redis_or_none = client

    async def stop(self, *, drain_delay_s: float = 0.0) -> None:
        """Drains and stops: readiness off, wait for in-flight calls (up to the grace period), close resources.
        Idempotent: a second call returns at once."""
        if self._stopped:
            return
        self._stopped = True
        self.runtime.ready = False
        await self._set_readiness(health_pb2.HealthCheckResponse.NOT_SERVING)
        if drain_delay_s > 0:
            await asyncio.sleep(drain_delay_s)
        # In-flight calls first: they may hand work to background jobs (risk's assessment recorder, outbox rows the
        # relay publishes), which then finish it when they are cancelled.
        if self._server is not None:
            await self._server.stop(self.runtime.config.drain_grace_s)
        await stop_background_tasks(self.runtime.background_tasks)
        if self.runtime.pool_or_none is not None:
            await self.runtime.pool_or_none.close()
        if self.runtime.redis_or_none is not None:
            await self.runtime.redis_or_none.aclose()
        if self._metrics is not None:
            self._metrics.stop()
        log.info("stopped")


def _tune_garbage_collector() -> None:
    """Moves everything built at start-up (modules, descriptors, pools) out of the collector's sight and collects
    young objects less often: the cycle collector then only walks what calls allocate."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


# A background job gets this long to finish after it is cancelled. Cancellation is repeated meanwhile: a client
# library that turns one CancelledError into its own error (redis-py can, in a blocking read) would otherwise
# leave a job looping on a "retry", and the process would never exit.
BACKGROUND_STOP_TIMEOUT_S = 10.0
BACKGROUND_RECANCEL_INTERVAL_S = 0.5


async def stop_background_tasks(tasks: Sequence[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Cancels every task, again and again until it is done or the timeout passes; logs and returns the ones
    left running."""
    if not tasks:
        return set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BACKGROUND_STOP_TIMEOUT_S
    pending = {task for task in tasks if not task.done()}
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=BACKGROUND_RECANCEL_INTERVAL_S)
    if pending:
        log.error("background jobs did not stop", extra={"fields": {"jobs": sorted(t.get_name() for t in pending)}})
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background job failed", exc_info=task.exception())
    return pending


class RedisUnavailable(Exception):
    """Redis did not answer within the start-up budget."""


async def _wait_for_redis(client: redis_asyncio.Redis, budget_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    delay_s = db.BACKOFF_INITIAL_S
    while True:
        try:
            await client.ping()
            return
        except (OSError, redis_asyncio.ConnectionError, redis_asyncio.TimeoutError) as err:
            if loop.time() >= deadline:
                raise RedisUnavailable(f"Redis unreachable after {budget_s:.0f}s: {type(err).__name__}") from err
            log.warning("Redis not reachable yet; retrying", extra={"fields": {"error": type(err).__name__}})
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, db.BACKOFF_MAX_S)
