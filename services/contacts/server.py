"""gRPC servicer for wallet.contacts.v1.ContactsService: proto ⇄ domain types, nothing else.

RPCs not built yet are inherited from the generated base class, which raises NotImplementedError; the kit's
interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED — never a fake success.
"""

from __future__ import annotations

from services.kit.grpc_server import Registration, Runtime
from wallet.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc

SERVICE_NAME = contacts_service_pb2.DESCRIPTOR.services_by_name["ContactsService"].full_name


class ContactsServer(contacts_service_pb2_grpc.ContactsServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime


def registrations(runtime: Runtime) -> list[Registration]:
    # The typed stubs declare every RPC abstract; the unbuilt ones are inherited on purpose (see the module docstring).
    servicer = ContactsServer(runtime)  # type: ignore[abstract]
    return [Registration(SERVICE_NAME, contacts_service_pb2_grpc.add_ContactsServiceServicer_to_server, servicer)]
