"""Is a component ready? gRPC services: ``grpc.health.v1`` overall status SERVING. Gateway: ``GET /healthz`` is 200."""

from __future__ import annotations

from typing import Protocol

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

PROBE_TIMEOUT_S = 1.0
HTTP_OK = 200


class Probe(Protocol):
    def ready(self) -> bool: ...

    def close(self) -> None: ...


class GrpcHealthProbe:
    """Asks the overall health (service name "") of the server at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.insecure_channel(address)
        self._stub = health_pb2_grpc.HealthStub(self._channel)

    def ready(self) -> bool:
        try:
            response = self._stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=PROBE_TIMEOUT_S)
        except grpc.RpcError:
            return False  # not listening yet, or health not registered yet
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()


class HttpHealthProbe:
    """``GET url`` answers 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        # trust_env=False: a proxy from the environment must not handle loopback probes.
        self._client = httpx.Client(timeout=PROBE_TIMEOUT_S, trust_env=False)

    def ready(self) -> bool:
        try:
            return self._client.get(self.url).status_code == HTTP_OK
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()
