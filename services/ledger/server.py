"""gRPC servicer for wallet.ledger.v1.LedgerService: proto ⇄ domain types, nothing else.

RPCs not built yet are inherited from the generated base class, which raises NotImplementedError; the kit's
interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED — never a fake success.
"""

from __future__ import annotations

from services.kit.grpc_server import Registration, Runtime
from wallet.ledger.v1 import ledger_service_pb2, ledger_service_pb2_grpc

SERVICE_NAME = ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


class LedgerServer(ledger_service_pb2_grpc.LedgerServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime


def registrations(runtime: Runtime) -> list[Registration]:
    # The typed stubs declare every RPC abstract; the unbuilt ones are inherited on purpose (see the module docstring).
    servicer = LedgerServer(runtime)  # type: ignore[abstract]
    return [Registration(SERVICE_NAME, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, servicer)]
