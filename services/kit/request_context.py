"""Per-call context carried in ``contextvars``: the request id and the authenticated principal.

Set by the kit's interceptor for the duration of one RPC; read by logging and by service code.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.kit.tokens import Principal

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
principal_var: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_principal() -> Principal | None:
    return principal_var.get()
