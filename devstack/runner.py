"""``python -m devstack run`` (what ``make run`` does): bring the whole suite up, keep it up, take it all down.

Order: lock the run dir → check ports → Postgres and Redis (embedded unless their URLs are given) → the
per-service databases → migrations → platform clients (ledger ⇄ risk service accounts) → services and gateway → wait until all are ready → address table → watch.
Everything started is registered for shutdown the moment it starts, so Ctrl-C at any point, a failure, or a child
dying later all unwind the same way: gateway, services, Redis, Postgres, lock — nothing left running.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TypeVar

from rich.console import Console

from devstack import processes
from devstack.children import Child, ChildSpec
from devstack.databases import database_name_for, ensure_databases
from devstack.errors import DevstackError
from devstack.leftovers import stop_leftovers
from devstack.lock import RunLock
from devstack.platform_clients import ensure_platform_clients
from devstack.ports import check_ports_free
from devstack.postgres_server import start_embedded_postgres
from devstack.readiness import GrpcHealthProbe, HttpHealthProbe, Probe
from devstack.redis_server import start_embedded_redis
from devstack.report import SuiteState, print_ready, remove_state, write_state
from devstack.settings import Settings
from devstack.signals import StopRequested, StopSignals
from devstack.supervisor import Supervisor, child_failure
from devstack.topology import GATEWAY_NAME, SERVICE_NAMES, Backends, Ports, gateway_env, ports_for, service_env

MIGRATE_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
# Above the services' default drain grace (DRAIN_GRACE_S, 10 s), so a clean drain is never cut short.
STOP_TIMEOUT_S = 15.0
WATCH_INTERVAL_S = 0.5

_T = TypeVar("_T")


@dataclass(slots=True)
class _Started:
    """What is up so far, for the state file and the watch loop."""

    pids: dict[str, int] = field(default_factory=dict)
    # name -> "is it still alive?" for the embedded backends, which are not supervised children.
    backend_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)


def run(settings: Settings, console: Console) -> int:
    """Run until Ctrl-C/SIGTERM (exit 0) or a failure (exit 1); always leaves nothing running."""
    signals = StopSignals()
    signals.install()
    cleanup = ExitStack()
    exit_code = 1
    try:
        _start_and_watch(settings, console, cleanup, signals)
    except StopRequested as stop:
        _say(f"{stop.signal_name} received: stopping the suite")
        exit_code = 0
    except DevstackError as err:
        _say_error(err)
    finally:
        signals.begin_shutdown()
        stop_started = time.monotonic()
        cleanup.close()
    if exit_code == 0:
        _say(f"stopped in {time.monotonic() - stop_started:.1f} s")
    return exit_code


def _start_and_watch(settings: Settings, console: Console, cleanup: ExitStack, signals: StopSignals) -> None:
    started_at = time.monotonic()
    lock = RunLock(settings.run_dir)
    lock.acquire()
    _on_exit(cleanup, "the run-dir lock", lock.release)
    # Removed last, after everything it lists has stopped (shutdown steps run in reverse order).
    _on_exit(cleanup, "the state file", lambda: remove_state(settings.run_dir))
    if lock.stale_pid is not None:
        leftovers = stop_leftovers(settings.run_dir)
        stopped = f"; stopped what it left running: {', '.join(leftovers)}" if leftovers else ""
        _say(f"cleaned up after a run that died (pid {lock.stale_pid}){stopped}")
    ports = ports_for(settings.port_offset)
    check_ports_free(ports.described())

    (settings.run_dir / "traces").mkdir(parents=True, exist_ok=True)
    started = _Started()
    backends = _start_backends(settings, cleanup, started, signals)
    _timed("databases", lambda: ensure_databases(backends.postgres_server_url, _database_names()))

    supervisor = Supervisor(start_guard=signals.deferred)
    _on_exit(cleanup, "the services", lambda: _stop_children(supervisor))
    _timed("migrations", lambda: _migrate(supervisor, settings, ports, backends))
    clients = _timed(
        "platform clients",
        lambda: ensure_platform_clients(
            auth_env=_service_spec("auth", settings, ports, backends).env,
            base=os.environ,
            run_dir=settings.run_dir,
            repo_dir=settings.repo_dir,
        ),
    )
    servers = supervisor.start_tier(
        [_service_spec(name, settings, ports, backends, extra_env=clients.get(name, {})) for name in SERVICE_NAMES]
        + [_gateway_spec(settings, ports, backends)]
    )
    started.pids.update({child.name: child.pid for child in servers})
    state = SuiteState(
        run_dir=settings.run_dir,
        ports=ports,
        postgres_url=backends.postgres_server_url,
        redis_url=backends.redis_url,
        pids=started.pids,
        ready=False,
    )
    write_state(state)
    _timed("services and gateway", lambda: _wait_ready(supervisor, servers, ports))

    write_state(dataclasses.replace(state, ready=True))
    print_ready(console, state, elapsed_s=time.monotonic() - started_at, logs_dir=settings.logs_dir)
    _watch(supervisor, started)


def _start_backends(settings: Settings, cleanup: ExitStack, started: _Started, signals: StopSignals) -> Backends:
    postgres_url = settings.database_url
    if postgres_url is None:
        # Signals wait until the server is registered for shutdown: pg_ctl starts it as a daemon, which an
        # interrupted start would leave running.
        with signals.deferred():
            postgres = _timed(
                "embedded Postgres",
                # The run-dir lock proves a server already running on this data dir is a crashed run's leftover.
                lambda: start_embedded_postgres(settings.run_dir / "postgres", adopt_running=True),
            )
            _on_exit(cleanup, "embedded Postgres", postgres.stop)
        started.pids["postgres"] = postgres.pid
        started.backend_checks["embedded Postgres"] = lambda: processes.is_alive(postgres.pid)
        postgres_url = postgres.url
    redis_url = settings.redis_url
    if redis_url is None:
        with signals.deferred():
            redis = _timed("embedded Redis", lambda: start_embedded_redis(settings.run_dir / "redis"))
            _on_exit(cleanup, "embedded Redis", redis.stop)
        started.pids["redis"] = redis.pid
        started.backend_checks["embedded Redis"] = lambda: processes.is_alive(redis.pid)
        redis_url = redis.url
    return Backends(postgres_server_url=postgres_url, redis_url=redis_url)


def _database_names() -> list[str]:
    return [database_name_for(name) for name in SERVICE_NAMES]


def _migrate(supervisor: Supervisor, settings: Settings, ports: Ports, backends: Backends) -> None:
    specs = [_service_spec(name, settings, ports, backends, migrate=True) for name in SERVICE_NAMES]
    supervisor.run_to_completion(specs, timeout_s=MIGRATE_TIMEOUT_S)


def _service_spec(
    name: str,
    settings: Settings,
    ports: Ports,
    backends: Backends,
    *,
    migrate: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> ChildSpec:
    env = service_env(name, base=os.environ, ports=ports, backends=backends, run_dir=settings.run_dir)
    env.update(extra_env or {})
    suffix = "-migrate" if migrate else ""
    return ChildSpec(
        name=f"{name}{suffix}",
        argv=[sys.executable, "-m", f"services.{name}", *(["migrate"] if migrate else [])],
        env=env,
        log_path=settings.logs_dir / f"{name}{suffix}.log",
        cwd=settings.repo_dir,
        one_shot=migrate,
    )


def _gateway_spec(settings: Settings, ports: Ports, backends: Backends) -> ChildSpec:
    return ChildSpec(
        name=GATEWAY_NAME,
        argv=[sys.executable, "-m", "gateway"],
        env=gateway_env(base=os.environ, ports=ports, backends=backends, run_dir=settings.run_dir),
        log_path=settings.logs_dir / f"{GATEWAY_NAME}.log",
        cwd=settings.repo_dir,
    )


def _wait_ready(supervisor: Supervisor, servers: list[Child], ports: Ports) -> None:
    probes: list[tuple[Child, Probe]] = []
    for child in servers:
        if child.name == GATEWAY_NAME:
            probes.append((child, HttpHealthProbe(f"{ports.gateway_url()}/healthz")))
        else:
            probes.append((child, GrpcHealthProbe(ports.grpc_address(child.name))))
    try:
        supervisor.wait_ready(probes, timeout_s=READY_TIMEOUT_S)
    finally:
        for _, probe in probes:
            probe.close()


def _watch(supervisor: Supervisor, started: _Started) -> None:
    """Until a signal: if any part of the suite dies, fail (and so stop the rest) instead of limping on."""
    while True:
        time.sleep(WATCH_INTERVAL_S)
        dead = supervisor.first_exited()
        if dead is not None:
            raise child_failure(dead, f"{dead.name} exited unexpectedly with code {dead.exit_code()}")
        for name, alive in started.backend_checks.items():
            if not alive():
                raise DevstackError(f"{name} stopped unexpectedly; its log is under the run dir")


def _stop_children(supervisor: Supervisor) -> None:
    killed = supervisor.stop_all(timeout_s=STOP_TIMEOUT_S)
    if killed:
        _say(f"did not stop within {STOP_TIMEOUT_S:.0f} s after SIGTERM, killed: {', '.join(killed)}")


def _on_exit(cleanup: ExitStack, what: str, step: Callable[[], None]) -> None:
    """Register a shutdown step that reports its failure and lets the remaining steps run."""

    def reporting_step() -> None:
        try:
            step()
        except (OSError, subprocess.SubprocessError, DevstackError) as err:
            print(f"error: could not stop {what}: {err}", file=sys.stderr, flush=True)

    cleanup.callback(reporting_step)


def _timed(what: str, step: Callable[[], _T]) -> _T:
    began = time.monotonic()
    result = step()
    _say(f"{what}: ready in {time.monotonic() - began:.1f} s")
    return result


def _say(message: str) -> None:
    # Plain print, not rich: a one-line message must stay one line however narrow the terminal is.
    print(message, flush=True)


def _say_error(err: DevstackError) -> None:
    print(f"error: {err}", file=sys.stderr, flush=True)
    for line in err.details:
        print(f"  {line}", file=sys.stderr, flush=True)
