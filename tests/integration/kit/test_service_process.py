"""A real service process (``python -m services.risk``): start-up failures are one clear line, and SIGTERM turns
health NOT_SERVING, drains and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"WALLET_RUN_DIR": str(REPO_ROOT / ".run" / "test"), **settings})
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_setting_is_one_line_naming_it() -> None:
    result = _run(["services.risk"], _env(REDIS_URL="redis://127.0.0.1:1/0"))
    assert result.returncode == 2
    assert result.stderr.strip() == "risk: configuration error: DATABASE_URL is required but not set"


def test_unreachable_postgres_exits_3_with_a_clear_line() -> None:
    env = _env(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_free_port()}/x",
        REDIS_URL="redis://127.0.0.1:1/0",
        GRPC_PORT=str(_free_port()),
        METRICS_PORT=str(_free_port()),
        STARTUP_BUDGET_S="1",
    )
    result = _run(["services.risk"], env)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("risk: Postgres unreachable after")


async def _status(port: int) -> int | None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


async def test_sigterm_turns_not_serving_then_exits_cleanly(database_url: str, redis_server_url: str) -> None:
    port = _free_port()
    env = _env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_server_url,
        GRPC_PORT=str(port),
        METRICS_PORT=str(_free_port()),
        DRAIN_DELAY_S="1.5",
    )
    migrate = await asyncio.to_thread(_run, ["services.risk", "migrate"], env)
    assert migrate.returncode == 0, migrate.stderr
    process = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "services.risk"], cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while await _status(port) != health_pb2.HealthCheckResponse.SERVING:
            assert process.poll() is None, "service exited during start-up"
            assert loop.time() < deadline, "service did not become SERVING"
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        # Poll rather than sleep a fixed time: on a loaded machine the signal may take a while to be handled.
        # The drain delay (DRAIN_DELAY_S) keeps the process answering NOT_SERVING long enough to be seen.
        deadline = loop.time() + START_TIMEOUT_S
        while await _status(port) != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert process.poll() is None, "exited before reporting NOT_SERVING"
            assert loop.time() < deadline, "never reported NOT_SERVING after SIGTERM"
            await asyncio.sleep(0.05)
        returncode = await asyncio.to_thread(process.wait, EXIT_TIMEOUT_S)
        assert returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
