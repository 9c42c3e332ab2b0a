"""GRPC_SO_REUSEPORT lets several server processes (here: two servers) share one gRPC port."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from services.kit.grpc_server import Registration, Runtime
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier

pytestmark = pytest.mark.integration


def _no_services(runtime: Runtime) -> Sequence[Registration]:
    return []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_two_servers_share_a_port_with_reuseport(database_url: str, redis_server_url: str) -> None:
    port = str(_free_port())
    config = config_for_tests("contacts", database_url, redis_server_url, GRPC_PORT=port, GRPC_SO_REUSEPORT="true")
    verifier = static_verifier(SigningKey())
    first = await start_test_server(config, _no_services, verifier)
    try:
        second = await start_test_server(config, _no_services, verifier)
        try:
            assert first.port == second.port == int(port)
        finally:
            await second.stop()
    finally:
        await first.stop()


async def test_without_reuseport_a_second_server_cannot_bind(database_url: str, redis_server_url: str) -> None:
    config = config_for_tests("contacts", database_url, redis_server_url, GRPC_PORT=str(_free_port()))
    verifier = static_verifier(SigningKey())
    first = await start_test_server(config, _no_services, verifier)
    try:
        with pytest.raises((OSError, RuntimeError), match="bind"):
            await start_test_server(config, _no_services, verifier)
    finally:
        await first.stop()
