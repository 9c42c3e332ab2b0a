"""A gRPC channel from one service to another, opened on first use and closed on shutdown.

Opening lazily means building a client costs nothing and needs no running event loop (clients are built with the
service's objects, before the server starts), and a peer that is not up yet does not stop a process from starting.
Every channel carries the kit's client interceptors, so each call continues the caller's trace.
"""

from __future__ import annotations

import grpc

from services.kit.telemetry import client_interceptors


class ServiceChannel:
    def __init__(self, address: str) -> None:
        self.address = address
        self._channel: grpc.aio.Channel | None = None

    def get(self) -> grpc.aio.Channel:
        """The channel, opened on the first call."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address, interceptors=client_interceptors())
        return self._channel

    async def close(self) -> None:
        """Closes the channel if it was opened; a later ``get`` opens a new one."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()
