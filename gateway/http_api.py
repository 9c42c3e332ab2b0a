"""The HTTP/JSON door: match the route, admit the call, transcode, call the owning service, transcode back.

Every failure, ours or the service's, leaves as ``application/problem+json`` (``gateway.problems``). Each response
carries ``X-Request-Id`` (the client's, when it has a safe shape, else a new one; sent upstream as ``x-request-id``)
and ``traceparent`` (the span this request ran in, continuing the client's trace when it sent one).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor
from opentelemetry import trace
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway import metrics
from gateway.admission import client_timeout_s, request_id_from
from gateway.problems import PROBLEM_CONTENT_TYPE, details_of_wallet_error, problem_from_details
from gateway.router import RouteMatch
from gateway.runtime import GatewayRuntime
from gateway.transcode import build_request, idempotency_field, parse_json_body, render_response, set_string_path
from gateway.upstreams import trace_metadata
from services.kit.errors import InvalidArgument, NotFound, WalletError
from services.kit.status import ErrorDetails
from services.kit.telemetry import current_traceparent

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
IDEMPOTENCY_HEADER = "idempotency-key"
# Forwarded so services that care about the source (risk, auth's brute-force guard) see the client's address.
FORWARDED_FOR_METADATA = "x-forwarded-for"
# nginx's "client closed request": counted in the metrics, never seen by the client.
CLIENT_CLOSED_REQUEST = 499


class PayloadTooLarge(InvalidArgument):
    """The body is over the gateway's limit: HTTP 413 (the reason stays the generic INVALID_REQUEST)."""


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class HttpApi:
    def __init__(self, runtime: GatewayRuntime) -> None:
        self._runtime = runtime
        self._config = runtime.config

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get("x-request-id"))
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        match = self._runtime.router.match(request.method, raw_path)
        route = match.binding.template.source if match is not None else metrics.UNMATCHED_ROUTE
        span = trace.get_current_span()
        span.update_name(f"{request.method} {route}")
        span.set_attribute("http.route", route)
        response = await self._serve(request, match, request_id)
        response.headers["x-request-id"] = request_id
        traceparent = current_traceparent()
        if traceparent:
            response.headers["traceparent"] = traceparent
        metrics.observe_http(route, request.method, response.status_code, time.perf_counter() - started)
        return response

    async def _serve(self, request: Request, match: RouteMatch | None, request_id: str) -> Response:
        request_message: Descriptor | None = None
        try:
            if match is None:
                return self._unmatched(request)
            request_message = match.method.descriptor.input_type
            return await self._forward(request, match, request_id)
        except WalletError as error:
            status = 413 if isinstance(error, PayloadTooLarge) else None
            return self._problem(details_of_wallet_error(error), None, http_status=status)
        except grpc.aio.AioRpcError as error:
            return self._problem(ErrorDetails.from_rpc_error(error), request_message)
        except ClientDisconnect:
            # The client went away while sending its body: nobody reads an answer; not a gateway error.
            log.debug("client disconnected before its request body was read")
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception:
            # A gateway bug: logged (through the redaction filter) with its trace id, never shown to the client.
            log.exception("unhandled error in the HTTP gateway")
            return self._problem(ErrorDetails(code=grpc.StatusCode.INTERNAL, message=""), None)

    def _unmatched(self, request: Request) -> Response:
        """404, or 405 with ``Allow`` when other verbs serve this path."""
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        allowed = self._runtime.router.allowed_verbs(raw_path)
        if not allowed:
            return self._problem(details_of_wallet_error(NotFound("no operation at this path and method")), None)
        refusal = InvalidArgument(f"this path takes {', '.join(allowed)}")
        response = self._problem(details_of_wallet_error(refusal), None, http_status=405)
        response.headers["allow"] = ", ".join(allowed)
        return response

    async def _forward(self, request: Request, match: RouteMatch, request_id: str) -> Response:
        method, binding = match.method, match.binding
        headers = request.headers
        admitted = await self._runtime.guard.admit(
            method.policy,
            authorization=headers.get("authorization"),
            client_ip=request.client.host if request.client else None,
            requested_timeout_s=client_timeout_s(headers.get("grpc-timeout"), headers.get("request-timeout")),
        )
        raw_body = await _read_body(request, self._config.max_body_bytes)
        body: Any = None
        if binding.body and raw_body.strip():
            body = parse_json_body(raw_body, max_depth=self._config.max_json_depth)
        message = build_request(
            method,
            binding,
            path_variables=match.path_variables,
            query=request.query_params.multi_items(),
            body=body,
            reject_unknown=self._config.reject_unknown_fields,
        )
        idempotency_key = headers.get(IDEMPOTENCY_HEADER)
        target = idempotency_field(method, binding)
        if idempotency_key is not None and target is not None:
            set_string_path(message, target, idempotency_key, source="Idempotency-Key header")
        metadata: list[tuple[str, str]] = [("x-request-id", request_id), *trace_metadata()]
        if "authorization" in headers:
            metadata.append(("authorization", headers["authorization"]))
        if request.client is not None:
            metadata.append((FORWARDED_FOR_METADATA, request.client.host))
        reply = await self._runtime.upstreams.typed(method.full_method)(
            message, timeout=admitted.timeout_s, metadata=metadata
        )
        return Response(render_response(reply, binding.response_body), 200, media_type=JSON_CONTENT_TYPE)

    def _problem(
        self, details: ErrorDetails, request_message: Descriptor | None, *, http_status: int | None = None
    ) -> Response:
        problem = problem_from_details(
            details, trace_id=current_trace_id(), request_message=request_message, http_status=http_status
        )
        response = Response(problem.encoded(), problem.status, media_type=PROBLEM_CONTENT_TYPE)
        if problem.retry_after_s is not None:
            response.headers["retry-after"] = str(problem.retry_after_s)
        if problem.status == 401:
            response.headers["www-authenticate"] = 'Bearer realm="wallet"'
        return response
