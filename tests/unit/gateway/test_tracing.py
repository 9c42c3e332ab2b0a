"""The HTTP door's server span: one per request, continuing the client's trace, with the status and ERROR on 5xx."""

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.tracing import HttpTracingMiddleware
from services.kit.telemetry import current_traceparent

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"


async def _echo_traceparent(request: Request) -> PlainTextResponse:
    status = int(request.query_params.get("status", "200"))
    return PlainTextResponse(current_traceparent(), status_code=status)


def _client() -> httpx.AsyncClient:
    app = HttpTracingMiddleware(Starlette(routes=[Route("/echo", _echo_traceparent)]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_continues_the_client_trace(span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    async with _client() as client:
        response = await client.get("/echo", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"})
    _, trace_id, span_id, _ = response.text.split("-")
    assert trace_id == TRACE_ID
    [span] = [span for span in span_exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert format(span.context.span_id, "016x") == span_id
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.name == "GET"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code == StatusCode.UNSET


async def test_new_trace_without_traceparent_and_error_on_5xx(span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    async with _client() as client:
        response = await client.get("/echo", params={"status": "503"})
    assert response.status_code == 503
    assert response.text.split("-")[1] != "0" * 32
    [span] = [span for span in span_exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert span.parent is None
    assert span.status.status_code == StatusCode.ERROR
