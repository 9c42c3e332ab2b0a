"""A service as a real process (``python -m services.<svc>``) that a test can start, SIGKILL, SIGTERM and restart
on the same port, and a stand-in auth that serves only ``GetJwks`` for the key that signs the test's tokens."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.testing import SigningKey
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 40.0
EXIT_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class JwksOnlyAuth(auth_service_pb2_grpc.AuthServiceServicer):
    """Auth as far as a token-verifying service needs it: the public key of the tests' SigningKey."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key

    async def GetJwks(self, request: auth_keys_pb2.GetJwksRequest, context: Any) -> auth_keys_pb2.GetJwksResponse:
        return auth_keys_pb2.GetJwksResponse(keys=[auth_keys_pb2.Jwk(**self.key.public_jwk)])


async def start_jwks_server(key: SigningKey) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(JwksOnlyAuth(key), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def serving_status(port: int) -> int | None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


class ServiceProcess:
    """One service process on a fixed port; ``start`` after ``kill`` is a restart on the same port."""

    def __init__(self, service: str, port: int, settings: dict[str, str], log_path: Path) -> None:
        self.service = service
        self.port = port
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update({"GRPC_PORT": str(port), "METRICS_PORT": str(free_port()), **settings})
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", f"services.{self.service}", "migrate"],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self) -> None:
        """Spawns the process and waits until it reports SERVING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = self._spawn()
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while await serving_status(self.port) != health_pb2.HealthCheckResponse.SERVING:
            assert self.process.poll() is None, f"{self.service} exited during start-up:\n{self.log_tail()}"
            assert loop.time() < deadline, f"{self.service} did not become SERVING:\n{self.log_tail()}"
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, as a crash or an OOM kill would leave it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(EXIT_TIMEOUT_S)

    async def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, EXIT_TIMEOUT_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(EXIT_TIMEOUT_S)

    def log_tail(self, chars: int = 4_000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""
