"""``walletctl status``: the gRPC health of every service (no credentials needed)."""

from __future__ import annotations

import asyncio

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.table import Table

from cli.output import EXIT_CHECK_FAILED, JsonFlag, console, print_json, reported
from cli.session import SERVICES, address_of
from services.kit.config import Env

HEALTH_TIMEOUT_S = 2.0


async def _health(address: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            return f"DOWN ({err.code().name})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def _statuses(env: Env) -> dict[str, dict[str, str]]:
    addresses = {service: address_of(service, env) for service in SERVICES}
    results = await asyncio.gather(*(_health(address) for address in addresses.values()))
    return {s: {"address": addresses[s], "status": status} for s, status in zip(SERVICES, results, strict=True)}


def status(as_json: JsonFlag = False) -> None:
    """Health of every service; exits 1 unless all are SERVING."""
    with reported():
        statuses = asyncio.run(_statuses(Env()))
    if as_json:
        print_json(statuses)
    else:
        table = Table("service", "address", "status")
        for service, entry in statuses.items():
            colour = "green" if entry["status"] == "SERVING" else "red"
            table.add_row(service, entry["address"], f"[{colour}]{entry['status']}[/{colour}]")
        console.print(table)
    if any(entry["status"] != "SERVING" for entry in statuses.values()):
        raise typer.Exit(EXIT_CHECK_FAILED)
