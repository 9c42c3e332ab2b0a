"""The servicer's shared state: the use-case core, auth's own verifier, and where a call comes from."""

from __future__ import annotations

from typing import Any

from services.auth import wire
from services.auth.core import AuthCore
from services.auth.domain_records import Source
from services.kit.tokens import TokenVerifier
from wallet.auth.v1 import auth_service_pb2_grpc

Context = Any


class HandlerBase(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, core: AuthCore, verifier: TokenVerifier) -> None:
        self._core = core
        self._verifier = verifier

    def _source(self, context: Context, device_id: str = "") -> Source:
        metadata = {
            key.lower(): value for key, value in context.invocation_metadata() or () if isinstance(value, str)
        }
        return wire.source_of(metadata, context.peer(), self._core.settings.trusted_client_ip_header, device_id)
