"""The gRPC door for mobile gRPC clients: forwards the raw bytes of public methods to the owning service.

A generic handler (identity serializers: the gateway never decodes what it forwards) with the same edge as HTTP:
bearer token verified unless the method is anonymous, rate limits, the client's deadline (capped), the request id and
the trace context (OpenTelemetry's server interceptor continues it here; ``traceparent`` carries it upstream). The upstream's status,
message and rich error details (``grpc-status-details-bin``) go back to the client unchanged.

Methods that are not public — internal ones such as ``RiskService/Assess`` and anything unknown — are answered
UNIMPLEMENTED, exactly like a method that does not exist, so the door does not reveal which internal methods exist.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from gateway import metrics
from gateway.admission import request_id_from
from gateway.catalog import PublicMethod
from gateway.http_api import FORWARDED_FOR_METADATA
from gateway.runtime import GatewayRuntime
from gateway.upstreams import trace_metadata
from services.kit.errors import WalletError
from services.kit.grpc_server import MAX_RECEIVE_MESSAGE_BYTES, MAX_SEND_MESSAGE_BYTES
from services.kit.status import STATUS_DETAILS_KEY, internal_rpc_status, to_rpc_status
from services.kit.telemetry import server_interceptor

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[bytes, bytes]
else:
    Context = Any

log = logging.getLogger(__name__)

GATEWAY_ERROR_DOMAIN = "gateway.wallet"
REQUEST_ID_METADATA = "x-request-id"


def peer_ip(peer: str) -> str | None:
    """``ipv4:127.0.0.1:5000`` → ``127.0.0.1``; ``ipv6:[::1]:5000`` → ``::1``; other transports → None."""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":
        return address.rsplit(":", 1)[0]
    if kind == "ipv6":
        return address.rsplit(":", 1)[0].strip("[]")
    return None


class PassThrough(grpc.GenericRpcHandler):
    def __init__(self, runtime: GatewayRuntime) -> None:
        self._runtime = runtime
        self._handlers: dict[str, Any] = {
            full_method: grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            for full_method, method in runtime.methods.items()
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self._handlers.get(handler_call_details.method)

    def _forwarder(self, method: PublicMethod) -> Any:
        runtime = self._runtime
        call_upstream = runtime.upstreams.raw(method.full_method)
        label = method.name

        async def forward(request: bytes, context: Context) -> bytes:
            started = time.perf_counter()
            headers = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
            request_id = request_id_from(headers.get(REQUEST_ID_METADATA))
            client_ip = peer_ip(context.peer())
            code = grpc.StatusCode.OK
            refusal: tuple[grpc.StatusCode, str, tuple[tuple[str, str | bytes], ...]]
            try:
                admitted = await runtime.guard.admit(
                    method.policy,
                    authorization=headers.get("authorization"),
                    client_ip=client_ip,
                    requested_timeout_s=context.time_remaining(),
                )
                metadata: list[tuple[str, str]] = [(REQUEST_ID_METADATA, request_id), *trace_metadata()]
                if "authorization" in headers:
                    metadata.append(("authorization", headers["authorization"]))
                if client_ip is not None:
                    metadata.append((FORWARDED_FOR_METADATA, client_ip))
                reply: bytes = await call_upstream(request, timeout=admitted.timeout_s, metadata=metadata)
                # In the trailers, as the HTTP door's X-Request-Id header: clients quote it when reporting a problem.
                context.set_trailing_metadata(((REQUEST_ID_METADATA, request_id),))
                return reply
            except WalletError as error:
                status = rpc_status.to_status(to_rpc_status(error, GATEWAY_ERROR_DOMAIN))
                code = status.code
                refusal = (status.code, status.details, tuple(status.trailing_metadata))
            except grpc.aio.AioRpcError as error:
                code = error.code()
                details = tuple(
                    (key, value) for key, value in error.trailing_metadata() or () if key == STATUS_DETAILS_KEY
                )
                refusal = (code, error.details() or "", details)
            except Exception:
                # A gateway bug: logged with its trace id; the client gets INTERNAL without the exception's text.
                log.exception("unhandled error in the gRPC pass-through")
                status = rpc_status.to_status(internal_rpc_status(GATEWAY_ERROR_DOMAIN))
                code = status.code
                refusal = (status.code, status.details, tuple(status.trailing_metadata))
            finally:
                metrics.observe_grpc(label, code.name, time.perf_counter() - started)
            # Aborting outside the `except` keeps the upstream's exception out of the abort's traceback (and span).
            trailers = (*refusal[2], (REQUEST_ID_METADATA, request_id))
            await context.abort(refusal[0], refusal[1], trailing_metadata=trailers)
            raise AssertionError("unreachable: abort raises")

        return forward


async def start_grpc_server(runtime: GatewayRuntime, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """Starts the pass-through server; returns it and the bound port (port 0 picks a free one)."""
    server = grpc.aio.server(
        interceptors=[server_interceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
        ],
    )
    server.add_generic_rpc_handlers([PassThrough(runtime)])
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port} (is the port in use?)")
    await server.start()
    return server, bound
