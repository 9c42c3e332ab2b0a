"""The process entry point shared by every service: ``python -m services.<svc> [serve|migrate]``.

A bad setting stops the process with one line naming it (exit 2); Postgres or Redis still unreachable after the
start-up budget stops it with one line saying which (exit 3). SIGTERM and SIGINT drain and stop (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from services.kit import db, gc_tuning
from services.kit.config import ConfigError, Env, ServiceConfig, load_service_config
from services.kit.grpc_server import RedisUnavailable, Registration, Runtime, WalletServer, stop_background_tasks
from services.kit.jwks import AuthServiceJwksSource
from services.kit.logs import setup_logging
from services.kit.migrations import MigrationError, apply_migrations
from services.kit.telemetry import setup_telemetry
from services.kit.tokens import TokenVerifier

log = logging.getLogger(__name__)

EXIT_CONFIG = 2
EXIT_DEPENDENCY = 3
EXIT_MIGRATION = 4


BackgroundJob = Coroutine[Any, Any, None]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What makes one service: its servicers, its migrations, and optionally its own token verifier (auth verifies
    with its own keys instead of calling itself) and background jobs (outbox relay, sweepers) started once ready."""

    name: str
    migrations_dir: Path
    build: Callable[[Runtime], Sequence[Registration]]
    use_redis: bool = True
    verifier: Callable[[Runtime], TokenVerifier] | None = None
    background_jobs: Callable[[Runtime], Sequence[BackgroundJob]] | None = None


def _fatal(message: str, code: int) -> int:
    # One line on stderr, readable without the JSON log.
    print(f"{message}", file=sys.stderr)
    return code


async def migrate(spec: ServiceSpec, config: ServiceConfig) -> list[int]:
    pool = await db.create_pool(config.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            return await apply_migrations(connection, spec.migrations_dir, scope=spec.name)
    finally:
        await pool.close()


def build_verifier(config: ServiceConfig) -> TokenVerifier:
    return TokenVerifier(
        AuthServiceJwksSource(config.auth_addr),
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
        refresh_min_interval_s=config.jwks_refresh_min_interval_s,
    )


async def serve(spec: ServiceSpec, config: ServiceConfig, *, drain_delay_s: float = 0.0) -> None:
    runtime = Runtime(config=config, verifier=None)
    runtime.verifier = spec.verifier(runtime) if spec.verifier is not None else build_verifier(config)
    server = WalletServer(runtime, spec.build(runtime), use_redis=spec.use_redis)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    start = asyncio.create_task(server.start())
    stop_wait = asyncio.create_task(stop_requested.wait())
    try:
        await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()  # re-raises a start-up failure
            if spec.background_jobs is not None:
                for job in spec.background_jobs(runtime):
                    runtime.background_tasks.append(asyncio.create_task(job))
            gc_tuning.settle_after_start()
            await stop_wait
        else:
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
        log.info("stop requested; draining")
    finally:
        stop_wait.cancel()
        await server.stop(drain_delay_s=drain_delay_s)
        # Whatever else still runs (a library's task, a job that ignored cancellation) must not keep the process
        # alive: the event loop's own shutdown would wait for it forever.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if await stop_background_tasks(others):
            logging.shutdown()
            os._exit(0)


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m services.{spec.name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    env = Env()
    try:
        config = load_service_config(spec.name)
        setup_logging(spec.name, env.string("LOG_LEVEL", "INFO"))
        drain_delay_s = env.number("DRAIN_DELAY_S", 0.0)
        setup_telemetry(spec.name, env=env)
    except ConfigError as err:
        return _fatal(f"{spec.name}: configuration error: {err}", EXIT_CONFIG)
    try:
        if args.command == "migrate":
            applied = uvloop.run(migrate(spec, config))
            print(f"{spec.name}: migrations applied: {applied or 'none (up to date)'}")
            return 0
        uvloop.run(serve(spec, config, drain_delay_s=drain_delay_s))
        return 0
    except db.DatabaseUnavailable as err:
        return _fatal(f"{spec.name}: {err}", EXIT_DEPENDENCY)
    except RedisUnavailable as err:
        return _fatal(f"{spec.name}: {err}", EXIT_DEPENDENCY)
    except MigrationError as err:
        return _fatal(f"{spec.name}: migration error: {err}", EXIT_MIGRATION)
    except OSError as err:
        return _fatal(f"{spec.name}: {err}", EXIT_DEPENDENCY)
