"""What the runner tells the outside once the suite is up: the address table for a person, and ``devstack.json``
(addresses and pids) for tools and tests."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

from devstack.topology import GATEWAY_NAME, GRPC_HOST, SERVICE_NAMES, Ports

STATE_FILE = "devstack.json"
READY_LINE_PREFIX = "wallet suite ready"


@dataclass(frozen=True, slots=True)
class SuiteState:
    run_dir: Path
    ports: Ports
    postgres_url: str
    redis_url: str
    # name -> pid of every process the runner owns: services, gateway, and the embedded postgres/redis if any.
    pids: Mapping[str, int]
    # False while the servers are starting: the file is written as soon as they have pids, so a runner that gets
    # killed leaves behind a list of what to clean up.
    ready: bool

    def as_json(self) -> dict[str, object]:
        addresses: dict[str, str] = {name: self.ports.grpc_address(name) for name in SERVICE_NAMES}
        addresses[f"{GATEWAY_NAME}_http"] = self.ports.gateway_url()
        return {
            "ready": self.ready,
            "runner_pid": os.getpid(),
            "run_dir": str(self.run_dir),
            "addresses": addresses,
            "metrics": {name: f"http://{GRPC_HOST}:{self.ports.metrics[name]}/metrics" for name in SERVICE_NAMES},
            "postgres_url": self.postgres_url,
            "redis_url": self.redis_url,
            "pids": dict(self.pids),
        }


def write_state(state: SuiteState) -> Path:
    path = state.run_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state.as_json(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # readers never see half a file
    return path


def read_state_pids(run_dir: Path) -> dict[str, int]:
    """The pids recorded by the last runner on ``run_dir`` (empty if none, or unreadable)."""
    try:
        recorded = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    pids = recorded.get("pids") if isinstance(recorded, dict) else None
    if not isinstance(pids, dict):
        return {}
    return {str(name): pid for name, pid in pids.items() if isinstance(pid, int)}


def remove_state(run_dir: Path) -> None:
    (run_dir / STATE_FILE).unlink(missing_ok=True)


def print_ready(console: Console, state: SuiteState, *, elapsed_s: float, logs_dir: Path) -> None:
    table = Table(title="wallet suite", title_justify="left")
    table.add_column("component")
    table.add_column("address")
    table.add_column("metrics")
    for name in SERVICE_NAMES:
        metrics_url = f"http://{GRPC_HOST}:{state.ports.metrics[name]}/metrics"
        table.add_row(name, f"{state.ports.grpc_address(name)} (gRPC)", metrics_url)
    table.add_row(GATEWAY_NAME, f"{state.ports.gateway_url()} (HTTP)", "")
    console.print(table)
    # URLs are printed whole, outside the table, which would fold or cut them on a narrow terminal.
    console.print(f"postgres: {_without_password(state.postgres_url)}", soft_wrap=True, highlight=False)
    console.print(f"redis:    {_without_password(state.redis_url)}", soft_wrap=True, highlight=False)
    console.print(f"logs:     {logs_dir}", soft_wrap=True, highlight=False)
    console.print(f"traces:   {state.run_dir / 'traces'}", soft_wrap=True, highlight=False)
    # Tests and scripts wait for this exact prefix.
    console.print(
        f"{READY_LINE_PREFIX} in {elapsed_s:.1f} s; press Ctrl-C to stop it", soft_wrap=True, highlight=False
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None or parts.password == "":
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
