"""Calls any declared wallet method with raw request bytes, as a hostile or careless client would.

The channel's serializers are identity functions, so the bytes go on the wire unchanged and the server alone decides
what they mean. The answer is reduced to what a client can learn: the status code and the ErrorInfo reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor

from services.kit.policy import MethodPolicy, policy_for
from services.kit.status import ErrorDetails

CALL_TIMEOUT_S = 10.0
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DeclaredMethod:
    full_method: str  # "/wallet.ledger.v1.LedgerService/CreateTransfer"
    input_type: Descriptor
    server_streaming: bool
    policy: MethodPolicy | None


@dataclass(frozen=True, slots=True)
class Outcome:
    code: grpc.StatusCode
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.code.name}/{self.reason or '-'} ({self.message[:80]})"


def declared_methods(service_full_name: str) -> list[DeclaredMethod]:
    service = descriptor_pool.Default().FindServiceByName(service_full_name)
    methods = []
    for method in service.methods:
        full_method = f"/{service.full_name}/{method.name}"
        assert not method.client_streaming, f"{full_method}: client streaming is not used by the wallet"
        methods.append(
            DeclaredMethod(full_method, method.input_type, method.server_streaming, policy_for(full_method))
        )
    return methods


def _identity(raw: bytes) -> bytes:
    return raw


async def call_raw(
    channel: grpc.aio.Channel, method: DeclaredMethod, payload: bytes, metadata: Metadata = ()
) -> Outcome:
    """The status of one call; a server stream is read to its end."""
    try:
        if method.server_streaming:
            stream = channel.unary_stream(
                method.full_method, request_serializer=_identity, response_deserializer=_identity
            )
            call = stream(payload, metadata=metadata, timeout=CALL_TIMEOUT_S)
            async for _ in call:
                pass
        else:
            unary = channel.unary_unary(
                method.full_method, request_serializer=_identity, response_deserializer=_identity
            )
            await unary(payload, metadata=metadata, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        details = ErrorDetails.from_rpc_error(error)
        return Outcome(details.code, details.reason, details.message)
    return Outcome(grpc.StatusCode.OK, "", "")


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)
