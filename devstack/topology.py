"""What the suite is made of: the four services and the gateway, their ports, and the environment each one gets.

Ports follow DESIGN.md §7; ``WALLET_PORT_OFFSET`` shifts every one of them so a second suite (e.g. the e2e test)
can run beside a developer's ``make run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.databases import database_url_for
from devstack.secrets import secret_env

SERVICE_NAMES: tuple[str, ...] = ("auth", "ledger", "contacts", "risk")
GATEWAY_NAME = "gateway"

GRPC_PORTS_DEFAULT: Mapping[str, int] = {"auth": 50051, "ledger": 50052, "contacts": 50053, "risk": 50054}
GATEWAY_HTTP_PORT_DEFAULT = 8080
GATEWAY_GRPC_PORT_DEFAULT = 50050
# Prometheus metrics listen on the gRPC port + 1000 (DESIGN.md §7).
METRICS_PORT_DISTANCE = 1_000
PORT_MAX = 65_535
GRPC_HOST = "127.0.0.1"

PORT_OFFSET_MAX = PORT_MAX - (max(GRPC_PORTS_DEFAULT.values()) + METRICS_PORT_DISTANCE)
assert PORT_OFFSET_MAX > 0


@dataclass(frozen=True, slots=True)
class Ports:
    """Every port the suite binds, for one port offset."""

    gateway_http: int
    gateway_grpc: int
    grpc: Mapping[str, int]
    metrics: Mapping[str, int]

    def described(self) -> list[tuple[int, str]]:
        """(port, what binds it), in a stable order, for the "port already taken" check."""
        listed = [(self.gateway_http, "gateway HTTP"), (self.gateway_grpc, "gateway gRPC")]
        for name in SERVICE_NAMES:
            listed.append((self.grpc[name], f"{name} gRPC"))
            listed.append((self.metrics[name], f"{name} metrics"))
        return listed

    def grpc_address(self, name: str) -> str:
        return f"{GRPC_HOST}:{self.grpc[name]}"

    def gateway_url(self) -> str:
        return f"http://{GRPC_HOST}:{self.gateway_http}"


def ports_for(port_offset: int) -> Ports:
    if not 0 <= port_offset <= PORT_OFFSET_MAX:
        raise ValueError(f"port offset must be between 0 and {PORT_OFFSET_MAX}, got {port_offset}")
    grpc = {name: port + port_offset for name, port in GRPC_PORTS_DEFAULT.items()}
    return Ports(
        gateway_http=GATEWAY_HTTP_PORT_DEFAULT + port_offset,
        gateway_grpc=GATEWAY_GRPC_PORT_DEFAULT + port_offset,
        grpc=grpc,
        metrics={name: port + METRICS_PORT_DISTANCE for name, port in grpc.items()},
    )


@dataclass(frozen=True, slots=True)
class Backends:
    """Where the suite's Postgres server and Redis are, once they are up."""

    postgres_server_url: str
    redis_url: str


def _peer_addresses(ports: Ports) -> dict[str, str]:
    return {f"{name.upper()}_ADDR": ports.grpc_address(name) for name in SERVICE_NAMES}


def service_env(
    name: str, *, base: Mapping[str, str], ports: Ports, backends: Backends, run_dir: Path
) -> dict[str, str]:
    """The environment of ``python -m services.<name>`` (and of its ``migrate``)."""
    env = dict(base)
    env.update(_peer_addresses(ports))
    env.update(
        {
            # Each service gets its own database, never the server URL: services do not share tables.
            "DATABASE_URL": database_url_for(backends.postgres_server_url, name),
            "REDIS_URL": backends.redis_url,
            "GRPC_HOST": GRPC_HOST,
            "GRPC_PORT": str(ports.grpc[name]),
            "METRICS_PORT": str(ports.metrics[name]),
            "OTEL_TRACES_FILE": str(run_dir / "traces" / f"{name}.jsonl"),
            "WALLET_RUN_DIR": str(run_dir),
            "LOG_LEVEL": base.get("LOG_LEVEL", "INFO"),
            # Logs go to a file that a person tails: write every line as it happens.
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(secret_env(name, base=base, run_dir=run_dir))
    return env


def gateway_env(*, base: Mapping[str, str], ports: Ports, backends: Backends, run_dir: Path) -> dict[str, str]:
    """The environment of ``python -m gateway``."""
    env = dict(base)
    env.update(_peer_addresses(ports))
    env.update(
        {
            "GATEWAY_HTTP_PORT": str(ports.gateway_http),
            "GATEWAY_GRPC_PORT": str(ports.gateway_grpc),
            # The gateway has no database, but its rate limits may live in Redis.
            "REDIS_URL": backends.redis_url,
            "OTEL_TRACES_FILE": str(run_dir / "traces" / f"{GATEWAY_NAME}.jsonl"),
            "WALLET_RUN_DIR": str(run_dir),
            "LOG_LEVEL": base.get("LOG_LEVEL", "INFO"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # A DATABASE_URL from the developer's shell is a server URL, meaningless to the gateway.
    env.pop("DATABASE_URL", None)
    # Every gateway replica must share the rate-limit key, or each would keep its own buckets.
    env.update(secret_env(GATEWAY_NAME, base=base, run_dir=run_dir))
    return env
