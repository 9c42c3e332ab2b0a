"""gRPC servicer for wallet.risk.v1.RiskService: proto ⇄ domain types, nothing else.

RPCs not built yet are inherited from the generated base class, which raises NotImplementedError; the kit's
interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED — never a fake success.
"""

from __future__ import annotations

from services.kit.grpc_server import Registration, Runtime
from wallet.risk.v1 import risk_service_pb2, risk_service_pb2_grpc

SERVICE_NAME = risk_service_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name


class RiskServer(risk_service_pb2_grpc.RiskServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime


def registrations(runtime: Runtime) -> list[Registration]:
    # The typed stubs declare every RPC abstract; the unbuilt ones are inherited on purpose (see the module docstring).
    servicer = RiskServer(runtime)  # type: ignore[abstract]
    return [Registration(SERVICE_NAME, risk_service_pb2_grpc.add_RiskServiceServicer_to_server, servicer)]
