"""The HTTP door's server span: continues the client's ``traceparent`` and makes one span per request.

A pure ASGI middleware in place of OpenTelemetry's ASGI instrumentation, which on every request also builds a dozen
attributes from the URL and headers, records its own duration and active-request metrics (the gateway has its RED
metrics per route in ``gateway.metrics``) and wraps ``send`` and ``receive``: measured at about a tenth of the
gateway's CPU per call. This span carries what is needed to find a request: the verb, the route template
(``HttpApi`` renames the span and sets ``http.route`` once it has matched), the status code, and ERROR on 5xx.
Upstream calls carry the trace in ``traceparent`` metadata (``gateway.upstreams.trace_metadata``), so the services'
spans are children of this one.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_tracer = trace.get_tracer("gateway.http")


class _AsgiHeaders(Getter[Scope]):
    """Reads propagation headers (``traceparent``, ``tracestate``) straight from the ASGI scope."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for name, value in carrier.get("headers", ()) if name == wanted]
        return found or None

    def keys(self, carrier: Scope) -> list[str]:
        headers: Iterable[tuple[bytes, bytes]] = carrier.get("headers", ())
        return [name.decode("latin-1") for name, _ in headers]


_GETTER = _AsgiHeaders()


class HttpTracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verb: str = scope["method"]
        parent = propagate.extract(scope, getter=_GETTER)
        with _tracer.start_as_current_span(
            verb, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": verb}
        ) as span:

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status: int = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_with_status)
