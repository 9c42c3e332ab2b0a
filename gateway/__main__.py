"""``python -m gateway``: the HTTP/JSON door (uvicorn), the gRPC pass-through and the metrics endpoint, in one
process and one event loop. SIGTERM/SIGINT stop uvicorn (it finishes in-flight requests), then the gRPC server
drains for ``DRAIN_GRACE_S``."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import uvicorn
import uvloop
from opentelemetry.instrumentation.redis import RedisInstrumentor

from gateway.app import create_app
from gateway.config import GatewayConfig, load_gateway_config
from gateway.grpc_passthrough import start_grpc_server
from gateway.runtime import build_runtime
from services.kit.config import ConfigError, Env
from services.kit.logs import setup_logging
from services.kit.metrics import start_metrics_server
from services.kit.telemetry import setup_telemetry

log = logging.getLogger("gateway")


async def serve(config: GatewayConfig, drain_grace_s: float) -> None:
    runtime = build_runtime(config)
    grpc_server, grpc_port = await start_grpc_server(runtime, config.grpc_host, config.grpc_port)
    metrics = start_metrics_server(config.grpc_host, config.metrics_port)
    http = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host=config.http_host,
            port=config.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # The client address is the TCP peer (README: no trusted-proxy setting yet), so uvicorn must not take
            # it from X-Forwarded-For either.
            proxy_headers=False,
        )
    )
    log.info(
        "gateway listening",
        extra={"fields": {"http_port": config.http_port, "grpc_port": grpc_port, "metrics_port": metrics.port}},
    )
    try:
        await http.serve()
    finally:
        await grpc_server.stop(drain_grace_s)
        metrics.stop()
        await runtime.close()
        log.info("stopped")


def _stopping(signum: int, frame: FrameType | None) -> None:
    log.info("stop signal received", extra={"fields": {"signal": signal.Signals(signum).name}})


def main() -> int:
    env = Env()
    try:
        setup_logging("gateway", env.string("LOG_LEVEL", "INFO"))
        config = load_gateway_config()
        drain_grace_s = env.number("DRAIN_GRACE_S", 10.0)
    except ConfigError as err:
        print(f"gateway: configuration error: {err}", file=sys.stderr)
        return 2
    setup_telemetry("gateway", env=env)
    # The gateway's one Redis command is the rate-limit script, inside every request's own span; a span of its own
    # per request cost about a tenth of the gateway's CPU (measured), so Redis is not traced in this process.
    RedisInstrumentor().uninstrument()
    # uvicorn catches SIGTERM/SIGINT while it serves and re-raises them once it has stopped; these handlers receive
    # that re-raise, so the process goes on to drain the gRPC side instead of dying with the default action.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _stopping)
    uvloop.run(serve(config, drain_grace_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
