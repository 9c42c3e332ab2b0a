"""The kit's server interceptor: request id, authentication, authorization, error mapping and RED metrics.

One interceptor wraps each wallet RPC handler in this order:
request id → policy lookup (fail closed) → token verification → permission and step-up → handler → error mapping.
Tracing is OpenTelemetry's own aio server interceptor, placed before this one so the span covers everything.
Health and reflection (``grpc.*``) pass straight through.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

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
# Client-supplied request ids are echoed and logged, so they are restricted to a safe shape.
_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

if TYPE_CHECKING:
    # The stubs make these generic; at run time they are plain classes.
    Context = grpc.aio.ServicerContext[Any, Any]
    MethodHandler = grpc.RpcMethodHandler[Any, Any]
Handler = Callable[[Any, Any], Any]


def _metadata(context: Context) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            values[key.lower()] = value
    return values


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
        self._method_metrics: dict[str, _MethodMetrics] = {}
        self._in_flight = metrics.RPC_IN_FLIGHT.labels(service_name)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        full_method = handler_call_details.method
        wrapped = self._wrapped.get(full_method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or not is_wallet_method(full_method):
            return handler
        wrapped = self._wrap(full_method, handler)
        # The servicer's handler for a method never changes, so the wrapper is built once per method, not per call.
        self._wrapped[full_method] = wrapped
        return wrapped

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

    async def _admit(self, full_method: str, request: Any, headers: dict[str, str]) -> None:
        """Authenticates and authorizes the call; raises a WalletError to refuse it."""
        policy = policy_for(full_method)
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
        self._authorize(policy, principal)

    async def _authenticate(self, headers: dict[str, str]) -> Principal:
        token = _bearer_token(headers)
        if token is None:
            raise Unauthenticated("missing bearer access token")
        if self._verifier is None:
            raise Unauthenticated("this service cannot verify access tokens")
        return await self._verifier.verify(token)

    def _authorize(self, policy: MethodPolicy, principal: Principal) -> None:
        if not grants(principal.roles, principal.scopes, policy.permission):
            raise PermissionDenied(f"permission {policy.permission} is required")
        # Step-up proves a human is present; service accounts have no second factor and act on their own scopes.
        is_human = principal.kind != PRINCIPAL_KIND_SERVICE
        if policy.step_up and is_human and not principal.has_fresh_step_up(self._clock()):
            raise StepUpRequired()

    async def _fail(self, context: Context, error: BaseException) -> None:
        """Aborts the call with the status mapped from ``error`` (``abort_with_status`` raises)."""
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
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            status = internal_rpc_status(self._domain)
        span.set_attribute("wallet.error.reason", status_reason(error))
        await context.abort_with_status(rpc_status.to_status(status))

    # --- wrappers ----------------------------------------------------------------------------------------------

    def _metrics_for(self, full_method: str) -> _MethodMetrics:
        method_metrics = self._method_metrics.get(full_method)
        if method_metrics is None:
            grpc_service, grpc_method = split_full_method(full_method)
            method_metrics = _MethodMetrics(self._service_name, grpc_service, grpc_method)
            self._method_metrics[full_method] = method_metrics
        return method_metrics

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

    def _wrap_unary(self, full_method: str, inner: Handler) -> Handler:
        async def handle(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            method_metrics = self._metrics_for(full_method)
            headers = self._begin(method_metrics, context)
            code = grpc.StatusCode.OK
            try:
                failure: Exception
                try:
                    await self._admit(full_method, request, headers)
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
                # holds) out of the abort's traceback, which the tracing interceptor records on the span.
                code = _code_of(failure)
                await self._fail(context, failure)
            finally:
                self._end(method_metrics, code, started)

        return handle

    def _wrap_unary_stream(self, full_method: str, inner: Handler) -> Handler:
        async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            method_metrics = self._metrics_for(full_method)
            headers = self._begin(method_metrics, context)
            code = grpc.StatusCode.OK
            try:
                failure: Exception
                try:
                    await self._admit(full_method, request, headers)
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
                await self._fail(context, failure)
            finally:
                self._end(method_metrics, code, started)

        return handle


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
