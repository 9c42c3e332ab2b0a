"""The gateway's ASGI application: the transcoded API, health, OpenAPI and the docs page.

Routes other than the fixed ones below come from the descriptors (``gateway.catalog``); nothing is hand-written.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.catalog import HTTP_VERBS
from gateway.http_api import HttpApi, current_trace_id
from gateway.openapi import OpenApiDocument
from gateway.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from gateway.runtime import GatewayRuntime
from gateway.security_headers import SecurityHeadersMiddleware
from gateway.tracing import HttpTracingMiddleware

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
# Served by the Starlette application; every other path is the transcoded API.
FIXED_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs"})
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


async def routing_problem(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (a path its router cannot even parse, a verb no route takes) as problem+json too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    reason = "NOT_FOUND" if status == 404 else ("INTERNAL" if status >= 500 else "INVALID_REQUEST")
    body = {
        "type": PROBLEM_TYPE_PREFIX + reason,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": "no operation at this path and method" if status in (404, 405) else HTTPStatus(status).phrase,
        "code": reason,
        "traceId": current_trace_id(),
    }
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


async def docs(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")


class ApiFirst:
    """Sends every request outside the fixed paths straight to the transcoding handler, without Starlette's router
    and its exception middleware: ``HttpApi.handle`` answers every failure itself, and this path is every API call
    (Starlette's layers were about a tenth of the gateway's CPU per call, measured). The fixed paths — health,
    OpenAPI, the docs page and its assets — keep the Starlette application."""

    def __init__(self, api: HttpApi, fixed: ASGIApp) -> None:
        self._api = api
        self._fixed = fixed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path in FIXED_PATHS or path.startswith(STATIC_PREFIX):
            await self._fixed(scope, receive, send)
            return
        response = await self._api.handle(Request(scope, receive))
        await response(scope, receive, send)


def create_app(runtime: GatewayRuntime, openapi: OpenApiDocument | None = None) -> ASGIApp:
    """The ASGI application, outermost first: the server span (``gateway.tracing``, continues ``traceparent``),
    security headers, CORS when configured, then ``ApiFirst``."""
    api = HttpApi(runtime)
    verbs = [verb.upper() for verb in HTTP_VERBS]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        _readyz(runtime),
        _openapi(openapi or OpenApiDocument(list(runtime.methods.values()))),
        Route("/docs", docs, methods=["GET"]),
        Mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    fixed = Starlette(routes=routes, exception_handlers={HTTPException: routing_problem})
    app: ASGIApp = ApiFirst(api, fixed)
    if runtime.config.cors_allowed_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(runtime.config.cors_allowed_origins),
            allow_methods=verbs,
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_EXPOSED_HEADERS),
            max_age=600,
        )
    return HttpTracingMiddleware(SecurityHeadersMiddleware(app))
