"""Loopback TCP ports: is one free, and give me a free one."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from devstack.errors import DevstackError

LOOPBACK = "127.0.0.1"


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if we could listen on ``host:port`` now.

    SO_REUSEADDR as gRPC and uvicorn set it, so a port in TIME_WAIT after a previous run counts as free, as it
    does for them. Binding 127.0.0.1 also fails when someone listens on 0.0.0.0 or [::] with that port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(ports: Iterable[tuple[int, str]]) -> None:
    """Raise a one-line :class:`DevstackError` naming the first taken port and what to do."""
    for port, owner in ports:
        if not is_port_free(port):
            raise DevstackError(
                f"port {port} ({owner}) is already in use: stop whatever listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it), or shift every port with e.g. WALLET_PORT_OFFSET=100"
            )


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel considers free right now (someone may take it before we bind it again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
