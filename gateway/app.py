"""The gateway's ASGI application: the transcoded API, health, OpenAPI and the docs page.

Routes other than the fixed ones below come from the descriptors (``gateway.catalog``); nothing is hand-written.
Middleware, outermost first: OpenTelemetry (continues ``traceparent``), security headers, CORS when configured.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.catalog import HTTP_VERBS
from gateway.http_api import HttpApi
from gateway.openapi import OpenApiDocument
from gateway.runtime import GatewayRuntime
from gateway.security_headers import SecurityHeadersMiddleware

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Headers a browser client may send and read across origins (web views).
CORS_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "traceparent",
    "request-timeout",
    "grpc-timeout",
)
CORS_EXPOSED_HEADERS = ("x-request-id", "traceparent", "retry-after")


async def healthz(request: Request) -> JSONResponse:
    """The process is up (liveness); says nothing about the services behind it."""
    return JSONResponse({"status": "ok"})


def _readyz(runtime: GatewayRuntime) -> Route:
    async def readyz(request: Request) -> JSONResponse:
        names = sorted(runtime.upstreams.addresses)
        serving = await asyncio.gather(*(runtime.upstreams.serving(name) for name in names))
        upstreams = {name: "SERVING" if ok else "NOT_SERVING" for name, ok in zip(names, serving, strict=True)}
        ready = all(serving)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "upstreams": upstreams}, 200 if ready else 503
        )

    return Route("/readyz", readyz, methods=["GET"])


def _openapi(document: OpenApiDocument) -> Route:
    async def openapi(request: Request) -> Response:
        return Response(document.encoded(), media_type="application/json")

    return Route("/openapi.json", openapi, methods=["GET"])


async def docs(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")


def create_app(runtime: GatewayRuntime, openapi: OpenApiDocument | None = None) -> Starlette:
    api = HttpApi(runtime)
    verbs = [verb.upper() for verb in HTTP_VERBS]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        _readyz(runtime),
        _openapi(openapi or OpenApiDocument(list(runtime.methods.values()))),
        Route("/docs", docs, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/{path:path}", api.handle, methods=verbs),
    ]
    middleware = [
        Middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"]),
        Middleware(SecurityHeadersMiddleware),
    ]
    if runtime.config.cors_allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(runtime.config.cors_allowed_origins),
                allow_methods=verbs,
                allow_headers=list(CORS_REQUEST_HEADERS),
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=600,
            )
        )
    return Starlette(routes=routes, middleware=middleware)
