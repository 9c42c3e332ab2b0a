"""Prometheus RED metrics of the gateway, per route (HTTP) and per method (gRPC pass-through).

Labels are bounded: the route is the path *template* from the descriptors (``/v1/accounts/{account_id}``), never
the request path; unmatched requests share the route label ``unmatched``.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.kit.metrics import LATENCY_BUCKETS_S

UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "wallet_gateway_http_requests_total",
    "HTTP requests served by the gateway, by route template, verb and status.",
    ["route", "verb", "status"],
)
HTTP_LATENCY = Histogram(
    "wallet_gateway_http_request_seconds",
    "Time to serve an HTTP request, upstream call included, in seconds.",
    ["route", "verb"],
    buckets=LATENCY_BUCKETS_S,
)
GRPC_FORWARDED = Counter(
    "wallet_gateway_grpc_forwarded_total",
    "gRPC pass-through calls, by method and status code.",
    ["grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "wallet_gateway_grpc_forward_seconds",
    "Time to forward a gRPC pass-through call, in seconds.",
    ["grpc_method"],
    buckets=LATENCY_BUCKETS_S,
)


def observe_http(route: str, verb: str, status: int, elapsed_s: float) -> None:
    HTTP_REQUESTS.labels(route, verb, str(status)).inc()
    HTTP_LATENCY.labels(route, verb).observe(elapsed_s)


def observe_grpc(grpc_method: str, code: str, elapsed_s: float) -> None:
    GRPC_FORWARDED.labels(grpc_method, code).inc()
    GRPC_LATENCY.labels(grpc_method).observe(elapsed_s)
