"""Prometheus RED metrics per RPC, served on the gRPC port + 1000.

Labels are bounded: service, method (from the descriptors, never from user input) and the status code name.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Buckets in seconds, from a cached read (sub-millisecond) to a slow cross-service write.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

RPC_STARTED = Counter(
    "wallet_grpc_server_started_total",
    "RPCs started on the server.",
    ["service", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "wallet_grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["service", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_LATENCY = Histogram(
    "wallet_grpc_server_handling_seconds",
    "Time to handle an RPC, in seconds.",
    ["service", "grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS_S,
)
RPC_IN_FLIGHT = Gauge("wallet_grpc_server_in_flight", "RPCs being handled now.", ["service"])


class MetricsServer:
    """The HTTP /metrics endpoint on its own thread (prometheus_client's WSGI server)."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def start_metrics_server(host: str, port: int) -> MetricsServer:
    httpd, thread = start_http_server(port, addr=host)
    return MetricsServer(httpd, thread)
