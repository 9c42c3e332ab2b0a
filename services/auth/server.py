"""gRPC servicer for wallet.auth.v1.AuthService: proto ⇄ domain types, nothing else.

RPCs not built yet are inherited from the generated base class, which raises NotImplementedError; the kit's
interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED — never a fake success.
"""

from __future__ import annotations

from services.kit.grpc_server import Registration, Runtime
from wallet.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


class AuthServer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime


def registrations(runtime: Runtime) -> list[Registration]:
    # The typed stubs declare every RPC abstract; the unbuilt ones are inherited on purpose (see the module docstring).
    servicer = AuthServer(runtime)  # type: ignore[abstract]
    return [Registration(SERVICE_NAME, auth_service_pb2_grpc.add_AuthServiceServicer_to_server, servicer)]
