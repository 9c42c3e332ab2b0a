"""The kit's server wrapper: tracing, request id, authentication, authorization, error mapping and RED metrics.

It wraps each wallet RPC handler in this order:
server span (W3C traceparent continued) → request id → policy (fail closed) → token verification → permission and
step-up → handler → error mapping. Health and reflection (``grpc.*``) pass straight through.

The wrapping happens once per method when a servicer is registered (``KitRegistrar``), not per call through
grpc.aio's interceptor chain: an aio interceptor costs an extra coroutine chain on every call, and OpenTelemetry's
generic aio server interceptor a second one plus a context proxy; on this machine those two cost more CPU than a
group-committed ledger transfer itself. The server span made here carries the same semantic-convention attributes
as OpenTelemetry's gRPC instrumentation (``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``;
status ERROR for the codes it marks as errors). The class still works as a grpc.aio interceptor
(``intercept_service``) for servers built by hand.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.kit import metrics
from services.kit.errors import (
    FieldViolation,
    InvalidArgument,
    NotImplementedYet,
    PermissionDenied,
    StepUpRequired,
    Unauthenticated,
    Unavailable,
    WalletError,
)
from services.kit.outages import as_outage
from services.kit.policy import MethodPolicy, grants, is_wallet_method, policy_for, split_full_method
from services.kit.request_checks import request_violations
from services.kit.request_context import principal_var, request_id_var
from services.kit.status import internal_rpc_status, to_rpc_status
from services.kit.tokens import PRINCIPAL_KIND_SERVICE, Principal, TokenVerifier

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
AUTHORIZATION_HEADER = "authorization"
# W3C trace-context headers: only when one of these came in is there a remote parent to continue.
TRACE_CONTEXT_HEADERS = ("traceparent", "tracestate")
TRACER_NAME = "services.kit.grpc"
# The codes OpenTelemetry's gRPC server instrumentation marks as span errors (the rest are the caller's problem).
ERROR_SPAN_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# Client-supplied request ids are echoed and logged, so they are restricted to a safe shape.
_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

if TYPE_CHECKING:
    # The stubs make these generic; at run time they are plain classes.
    Context = grpc.aio.ServicerContext[Any, Any]
    MethodHandler = grpc.RpcMethodHandler[Any, Any]
Handler = Callable[[Any, Any], Any]


def _metadata(context: Context) -> dict[str, str]:
    # HTTP/2 header names arrive lower-case; binary (``-bin``) values are bytes and not needed here.
    values: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            values[key] = value
    return values


def _remote_parent(headers: Mapping[str, str]) -> otel_context.Context | None:
    """The caller's trace context (W3C ``traceparent``), or None when the call starts a trace."""
    for name in TRACE_CONTEXT_HEADERS:
        if name in headers:
            return propagate.extract(headers)
    return None


def _request_id(headers: dict[str, str]) -> str:
    supplied = headers.get(REQUEST_ID_HEADER)
    if supplied is not None and _REQUEST_ID_SHAPE.match(supplied):
        return supplied
    return str(uuid.uuid4())


def _bearer_token(headers: dict[str, str]) -> str | None:
    value = headers.get(AUTHORIZATION_HEADER)
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or token.strip() == "":
        return None
    return token.strip()


class WalletServerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        service_name: str,
        verifier: TokenVerifier | None,
        *,
        is_ready: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service_name = service_name
        self._domain = f"{service_name}.wallet"
        self._verifier = verifier
        self._is_ready = is_ready
        self._clock = clock
        self._wrapped: dict[str, MethodHandler] = {}
        self._methods: dict[str, _Method] = {}
        self._in_flight = metrics.RPC_IN_FLIGHT.labels(service_name)
        # A proxy while no tracer provider is installed; it follows the global provider once one is.
        self._tracer = trace.get_tracer(TRACER_NAME)

    def wrap_handler(self, full_method: str, handler: MethodHandler | None) -> MethodHandler | None:
        """The kit's wrapper around one method's handler, built once per method (``grpc.*`` passes through)."""
        if handler is None or not is_wallet_method(full_method):
            return handler
        wrapped = self._wrapped.get(full_method)
        if wrapped is None:
            wrapped = self._wrap(full_method, handler)
            # The servicer's handler for a method never changes, so the wrapper is built once, not per call.
            self._wrapped[full_method] = wrapped
        return wrapped

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        full_method = handler_call_details.method
        wrapped = self._wrapped.get(full_method)
        if wrapped is not None:
            return wrapped
        return self.wrap_handler(full_method, await continuation(handler_call_details))

    def _wrap(self, full_method: str, handler: MethodHandler) -> MethodHandler:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(full_method, handler.unary_unary),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_unary_stream(full_method, handler.unary_stream),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        raise AssertionError(f"client-streaming wallet methods are not supported: {full_method}")

    # --- the steps -------------------------------------------------------------------------------------------

    async def _admit(self, policy: MethodPolicy | None, request: Any, headers: dict[str, str]) -> None:
        """Authenticates and authorizes the call; raises a WalletError to refuse it."""
        if policy is None:
            raise PermissionDenied("method has no access policy")
        if isinstance(request, InvalidFieldValues):
            raise InvalidArgument("request has invalid field values", field_violations=request.violations)
        if isinstance(request, UndecodableRequest):
            raise InvalidArgument(
                "request body is not a valid protobuf message for this method",
                field_violations=[FieldViolation("*", "not a valid serialized request message")],
            )
        if not self._is_ready():
            raise Unavailable("service is starting or draining", retry_after_s=1.0)
        if policy.anonymous:
            return
        principal = await self._authenticate(headers)
        principal_var.set(principal)
        self._authorize(policy, principal, request)

    async def _authenticate(self, headers: dict[str, str]) -> Principal:
        token = _bearer_token(headers)
        if token is None:
            raise Unauthenticated("missing bearer access token")
        if self._verifier is None:
            raise Unauthenticated("this service cannot verify access tokens")
        return await self._verifier.verify(token)

    def _authorize(self, policy: MethodPolicy, principal: Principal, request: Any) -> None:
        if not grants(principal.roles, principal.scopes, policy.permission):
            raise PermissionDenied(f"permission {policy.permission} is required")
        # Step-up proves a human is present; service accounts have no second factor and act on their own scopes.
        is_human = principal.kind != PRINCIPAL_KIND_SERVICE
        if policy.step_up and is_human and not self._has_step_up(policy, principal, request):
            raise StepUpRequired()

    def _has_step_up(self, policy: MethodPolicy, principal: Principal, request: Any) -> bool:
        now = self._clock()
        if principal.bound_method is None:
            return principal.has_fresh_step_up(now)
        # A device step-up approves one operation: this method, on the resource the request's first field names
        # (a create's new id, the transfer being approved, the card being revealed). A request whose first field
        # is not a string cannot be bound, so such a token is refused for it.
        resource = operation_resource(request)
        return resource is not None and principal.has_fresh_step_up_for(policy.full_method, resource, now)

    def _failure_status(self, error: BaseException) -> grpc.Status:
        """The status to abort with for ``error``; logs unexpected errors and notes the reason on the span."""
        if isinstance(error, NotImplementedError):
            error = NotImplementedYet("this method is declared in the contract but not built yet")
        outage = as_outage(error)
        if outage is not None:
            log.warning("dependency unavailable", extra={"fields": {"error": type(error).__name__}})
            error = outage
        span = trace.get_current_span()
        if isinstance(error, WalletError):
            status = to_rpc_status(error, self._domain)
        else:
            log.error("unhandled error in RPC handler", exc_info=error)
            span.set_attribute("wallet.error.type", type(error).__name__)
            status = internal_rpc_status(self._domain)
        span.set_attribute("wallet.error.reason", status_reason(error))
        converted: grpc.Status = rpc_status.to_status(status)
        return converted

    # --- wrappers ----------------------------------------------------------------------------------------------

    def _method_for(self, full_method: str) -> _Method:
        method = self._methods.get(full_method)
        if method is None:
            method = _Method(self._service_name, full_method)
            self._methods[full_method] = method
        return method

    def _begin(self, method_metrics: _MethodMetrics, context: Context) -> dict[str, str]:
        headers = _metadata(context)
        request_id = _request_id(headers)
        request_id_var.set(request_id)
        principal_var.set(None)
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        method_metrics.started.inc()
        self._in_flight.inc()
        return headers

    def _end(self, method_metrics: _MethodMetrics, code: grpc.StatusCode, started: float) -> None:
        self._in_flight.dec()
        method_metrics.handled(code).inc()
        method_metrics.latency.observe(time.perf_counter() - started)

    def _start_span(self, method: _Method, headers: dict[str, str]) -> tuple[trace.Span, object]:
        """The call's SERVER span, made current (continuing the caller's trace when it sent a traceparent)."""
        parent = _remote_parent(headers)
        span = self._tracer.start_span(
            method.full_method, context=parent, kind=SpanKind.SERVER, attributes=method.span_attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def _wrap_unary(self, full_method: str, inner: Handler) -> Handler:
        method = self._method_for(full_method)
        # Generated servicers' handlers are coroutine functions; a plain function may still return an awaitable.
        is_coroutine = inspect.iscoroutinefunction(inner)

        async def handle(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            headers = self._begin(method.metrics, context)
            span, token = self._start_span(method, headers)
            code = grpc.StatusCode.OK
            ended = False
            try:
                failure: Exception
                try:
                    await self._admit(method.policy, request, headers)
                    if is_coroutine:
                        return await inner(request, context)
                    result = inner(request, context)
                    if inspect.isawaitable(result):
                        result = await result
                    return result
                except asyncio.CancelledError:
                    # The client went away (or the server is stopping): count it as such, not as OK.
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as error:
                    if _is_abort(error):
                        code = _code_from_context(context)
                        raise
                    failure = error
                # Aborting outside the `except` block keeps the handler's exception (and whatever its message
                # holds) out of the abort's traceback. The span and metrics end first: grpc.aio sends the status
                # inside abort(), so the caller may see the error before anything after it runs.
                code = _code_of(failure)
                status = self._failure_status(failure)
                ended = True
                self._end(method.metrics, code, started)
                _end_span(span, token, code)
                await context.abort_with_status(status)
            finally:
                if not ended:
                    self._end(method.metrics, code, started)
                    _end_span(span, token, code)

        return handle

    def _wrap_unary_stream(self, full_method: str, inner: Handler) -> Handler:
        method = self._method_for(full_method)

        async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            headers = self._begin(method.metrics, context)
            span, token = self._start_span(method, headers)
            code = grpc.StatusCode.OK
            ended = False
            try:
                failure: Exception
                try:
                    await self._admit(method.policy, request, headers)
                    async for item in inner(request, context):
                        yield item
                    return
                except asyncio.CancelledError:
                    # The client went away (or the server is stopping): count it as such, not as OK.
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as error:
                    if _is_abort(error):
                        code = _code_from_context(context)
                        raise
                    failure = error
                code = _code_of(failure)
                status = self._failure_status(failure)
                ended = True
                self._end(method.metrics, code, started)
                _end_span(span, token, code)
                await context.abort_with_status(status)
            finally:
                if not ended:
                    self._end(method.metrics, code, started)
                    _end_span(span, token, code)

        return handle


def _end_span(span: trace.Span, token: object, code: grpc.StatusCode) -> None:
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in ERROR_SPAN_CODES:
            span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()
    otel_context.detach(token)  # type: ignore[arg-type]


class _Method:
    """What the wrapper needs of one method, worked out once: its policy, span attributes and metric children."""

    def __init__(self, service_name: str, full_method: str) -> None:
        grpc_service, grpc_method = split_full_method(full_method)
        self.full_method = full_method
        self.policy = policy_for(full_method)
        self.span_attributes: dict[str, str | int] = {
            "rpc.system": "grpc",
            "rpc.service": grpc_service,
            "rpc.method": grpc_method,
        }
        self.metrics = _MethodMetrics(service_name, grpc_service, grpc_method)


class KitRegistrar:
    """Stands in for the grpc.aio server when a generated ``add_*Servicer_to_server`` registers a servicer, and
    hands the server the kit's wrapped handlers instead: the kit's work then runs inside each handler, without
    grpc.aio's per-call interceptor chain."""

    def __init__(self, server: grpc.aio.Server, wrapper: WalletServerInterceptor) -> None:
        self._server = server
        self._wrapper = wrapper

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_WrappedGenericHandler(h, self._wrapper) for h in handlers])

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, MethodHandler]) -> None:
        wrapped: dict[str, MethodHandler] = {}
        for name, handler in handlers.items():
            kit_handler = self._wrapper.wrap_handler(f"/{service_name}/{name}", handler)
            assert kit_handler is not None
            wrapped[name] = kit_handler
        self._server.add_registered_method_handlers(service_name, wrapped)


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: WalletServerInterceptor) -> None:
        self._inner = inner
        self._wrapper = wrapper

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> MethodHandler | None:
        return self._wrapper.wrap_handler(handler_call_details.method, self._inner.service(handler_call_details))


class _MethodMetrics:
    """The metric children of one method, looked up once: label lookups cost more than the increments."""

    def __init__(self, service: str, grpc_service: str, grpc_method: str) -> None:
        self._labels = (service, grpc_service, grpc_method)
        self.started = metrics.RPC_STARTED.labels(*self._labels)
        self.latency = metrics.RPC_LATENCY.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = metrics.RPC_HANDLED.labels(*self._labels, code.name)
            self._handled[code] = child
        return child


def operation_resource(request: Any) -> str | None:
    """The request's first field (lowest field number) when it is a single string: what an operation acts on."""
    if not isinstance(request, Message):
        return None
    fields = request.DESCRIPTOR.fields
    if not fields:
        return None
    first: FieldDescriptor = min(fields, key=lambda field: field.number)  # type: ignore[assignment]
    if first.type != FieldDescriptor.TYPE_STRING or first.is_repeated:
        return None
    value: str = getattr(request, first.name)
    return value


class UndecodableRequest:
    """Stands in for a request whose bytes did not parse, so the call can fail with INVALID_ARGUMENT instead of
    grpc's own INTERNAL "Exception deserializing request"."""


class InvalidFieldValues(UndecodableRequest):
    """Stands in for a request that parsed but holds values no handler can use (tests in ``request_checks``)."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    strict = deserializer

    def deserialize(raw: bytes) -> Any:
        try:
            request = strict(raw)
        except Exception:  # protobuf raises DecodeError, or RuntimeError for some malformed inputs
            return UndecodableRequest()
        if isinstance(request, Message):
            # A string holding NUL serializes a zero byte; without one, only enums and times need a look.
            violations = request_violations(request, strings=b"\x00" in raw)
            if violations:
                return InvalidFieldValues(violations)
        return request

    return deserialize


def _code_from_context(context: Context) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _is_abort(error: BaseException) -> bool:
    # grpc.aio raises AbortError out of context.abort(); it must propagate untouched.
    return type(error).__name__ == "AbortError"


def _code_of(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, WalletError):
        return grpc.StatusCode[error.category.value]
    if isinstance(error, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    return grpc.StatusCode.INTERNAL


def status_reason(error: BaseException) -> str:
    if isinstance(error, WalletError):
        return error.reason
    if isinstance(error, NotImplementedError):
        return NotImplementedYet.reason
    return "INTERNAL"
