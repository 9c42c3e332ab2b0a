"""The gateway's ASGI application.

For now it serves ``/healthz`` only; transcoding routes are built from the proto descriptors by the gateway issue.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])
