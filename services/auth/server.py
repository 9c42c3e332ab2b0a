"""gRPC servicer for wallet.auth.v1.AuthService: proto ⇄ domain types, one use-case call per handler.

RPCs not built yet (passkeys, issue 13) are inherited from the generated base class, which raises
NotImplementedError; the kit's interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED.
"""

from __future__ import annotations

from services.auth.server_devices import DeviceHandlers
from services.auth.server_identity import IdentityHandlers
from services.auth.server_sessions import SessionHandlers
from wallet.auth.v1 import auth_service_pb2

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


class AuthServer(IdentityHandlers, SessionHandlers, DeviceHandlers):
    """One servicer for wallet.auth.v1.AuthService, its handlers grouped by concept in three mixins."""
