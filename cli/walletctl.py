"""``walletctl``: the operator CLI (typer + rich).

For now: ``status`` (health of every service). Later issues add trace, ledger verify-chain, keys rotate, vault
backup/restore, risk rules, invariants and demo.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from services.kit.config import DEFAULT_GRPC_PORTS, Env

app = typer.Typer(help="Operate the wallet platform.", no_args_is_help=True)
console = Console()
HEALTH_TIMEOUT_S = 2.0
SERVICES = ("auth", "ledger", "contacts", "risk")


def _address(service: str, env: Env) -> str:
    offset = env.integer("WALLET_PORT_OFFSET", 0)
    return env.string(f"{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS[service] + offset}")


async def _health(address: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            return f"DOWN ({err.code().name})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def _statuses(env: Env) -> dict[str, dict[str, str]]:
    addresses = {service: _address(service, env) for service in SERVICES}
    results = await asyncio.gather(*(_health(address) for address in addresses.values()))
    return {s: {"address": addresses[s], "status": status} for s, status in zip(SERVICES, results, strict=True)}


@app.callback()
def main() -> None:
    """Operate the wallet platform. Addresses come from *_ADDR or the default ports (+ WALLET_PORT_OFFSET)."""


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="print JSON for scripts")) -> None:
    """Health of every service; exits 1 unless all are SERVING."""
    statuses = asyncio.run(_statuses(Env()))
    if as_json:
        typer.echo(json.dumps(statuses))
    else:
        table = Table("service", "address", "status")
        for service, entry in statuses.items():
            colour = "green" if entry["status"] == "SERVING" else "red"
            table.add_row(service, entry["address"], f"[{colour}]{entry['status']}[/{colour}]")
        console.print(table)
    if any(entry["status"] != "SERVING" for entry in statuses.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
