"""gRPC servicer for wallet.auth.v1.AuthService: proto ⇄ domain types, one use-case call per handler.

Every RPC of the contract is built; one not built would be inherited from the generated base class, which raises
NotImplementedError, and the kit's interceptor would answer UNIMPLEMENTED with reason NOT_IMPLEMENTED.
"""

from __future__ import annotations

from services.auth.server_devices import DeviceHandlers
from services.auth.server_identity import IdentityHandlers
from services.auth.server_passkeys import PasskeyHandlers
from services.auth.server_sessions import SessionHandlers
from wallet.auth.v1 import auth_service_pb2

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


class AuthServer(IdentityHandlers, SessionHandlers, DeviceHandlers, PasskeyHandlers):
    """One servicer for wallet.auth.v1.AuthService, its handlers grouped by concept in four mixins."""
