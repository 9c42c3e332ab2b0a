"""OpenTelemetry setup: one tracer provider per process, exporters chosen by configuration.

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` set → OTLP/gRPC exporter (a collector, Jaeger, Tempo).
- ``OTEL_TRACES_FILE`` set → spans as JSON lines in that file (``make run`` writes them under ``.run/traces/``).
- tests pass an in-memory exporter.
asyncpg and Redis are instrumented globally; gRPC clients through explicit interceptors (``client_interceptors()``)
so the wiring stays visible. Wallet services' server spans are made by the kit's handler wrapper
(``services/kit/interceptors.py``, cheaper than OpenTelemetry's generic aio interceptor); ``server_interceptor()`` is
that generic interceptor, for servers that proxy arbitrary methods (the gateway's gRPC passthrough). The Redis instrumentation records commands with their
arguments replaced by ``?``, and asyncpg records parameterized SQL only, so no values reach spans.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.kit.config import Env
from services.kit.redaction import redact

_lock = threading.Lock()
_libraries_instrumented = False


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line; ``walletctl trace`` reads these files back."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                self._file.write(span.to_json(indent=None) + "\n")
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    redacted: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if isinstance(value, str):
            redacted[key] = redact(value)
        elif isinstance(value, tuple | list):
            redacted[key] = tuple(redact(item) if isinstance(item, str) else item for item in value)
        else:
            redacted[key] = value
    return redacted


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose attribute and event values went through the kit's redaction filter."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redact_attributes(span.attributes),
        events=[Event(event.name, _redact_attributes(event.attributes), event.timestamp) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code, redact(span.status.description or "") or None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Defence in depth: whatever an instrumentation records (exception messages, stack traces), every exporter
    sees it through the same redaction filter as the logs."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([redact_span(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _instrument_libraries() -> None:
    global _libraries_instrumented
    with _lock:
        if _libraries_instrumented:
            return
        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
        RedisInstrumentor().instrument()
        _libraries_instrumented = True


def setup_telemetry(
    service_name: str,
    *,
    env: Env | None = None,
    extra_exporters: Sequence[SpanExporter] = (),
) -> TracerProvider:
    """Installs the global tracer provider (once per process) and instruments asyncpg and Redis."""
    env = env or Env()
    resource = Resource.create({"service.name": f"wallet-{service_name}", "service.namespace": "wallet"})
    provider = TracerProvider(resource=resource)
    otlp_endpoint = env.optional_string("OTEL_EXPORTER_OTLP_ENDPOINT")
    if otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter(endpoint=otlp_endpoint)))
        )
    traces_file = env.optional_string("OTEL_TRACES_FILE")
    if traces_file is not None:
        provider.add_span_processor(
            BatchSpanProcessor(RedactingSpanExporter(JsonLinesSpanExporter(Path(traces_file))))
        )
    for exporter in extra_exporters:
        provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exporter)))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator()]))
    _instrument_libraries()
    return provider


def server_interceptor() -> grpc.aio.ServerInterceptor:
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor()  # type: ignore[no-untyped-call]
    return interceptor


def client_interceptors() -> list[Any]:
    interceptors: list[Any] = aio_client_interceptors()  # type: ignore[no-untyped-call]
    return interceptors


def current_traceparent() -> str:
    """The W3C ``traceparent`` of the current span, for events and responses ('' outside a span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def current_trace_id() -> str:
    """The current trace's id (32 hex digits) for audit rows, '' outside a span."""
    parts = current_traceparent().split("-")
    return parts[1] if len(parts) >= 4 else ""
