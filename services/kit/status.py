"""``WalletError`` → ``google.rpc.Status`` with details, and back again on the client side.

Server side: every failed call carries ``ErrorInfo{reason, domain, metadata}``; invalid input adds ``BadRequest``
field violations, a missing step-up adds ``PreconditionFailure``, rate limits and unavailability add ``RetryInfo``.
Client side: ``ErrorDetails.from_rpc_error`` decodes them for tests, the gateway and other services.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.kit.errors import Category, FieldViolation, WalletError

INTERNAL_MESSAGE = "internal error; quote the trace id when reporting it"
# Trailing-metadata key of the serialized google.rpc.Status (the gRPC rich error model).
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def status_code(category: Category) -> grpc.StatusCode:
    return grpc.StatusCode[category.value]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: WalletError, domain: str) -> status_pb2.Status:
    code = status_code(error.category)
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata))]
    if error.field_violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.field_violations
            ]
        )
        details.append(_pack(bad_request))
    if error.precondition_violations:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in error.precondition_violations
            ]
        )
        details.append(_pack(failure))
    if error.retry_after_s is not None:
        seconds = max(0.0, error.retry_after_s)
        whole = math.floor(seconds)
        delay = duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_rpc_status(domain: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=domain)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE, details=[_pack(info)])


@dataclass(slots=True)
class ErrorDetails:
    """What a client can learn from a failed call."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)
    precondition_types: list[str] = field(default_factory=list)
    retry_after_s: float | None = None

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ErrorDetails:
        """Decodes a failed call from either API (``grpc.aio.AioRpcError`` or a sync ``grpc.Call``)."""
        code_fn = getattr(error, "code", None)
        details_fn = getattr(error, "details", None)
        metadata_fn = getattr(error, "trailing_metadata", None)
        assert callable(code_fn), "not a failed gRPC call"
        assert callable(details_fn), "not a failed gRPC call"
        assert callable(metadata_fn), "not a failed gRPC call"
        details = cls(code=code_fn(), message=details_fn() or "")
        for key, value in metadata_fn() or ():
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                status = status_pb2.Status.FromString(value)
                for packed in status.details:
                    details._absorb(packed)
        return details

    def _absorb(self, packed: any_pb2.Any) -> None:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            self.reason, self.domain, self.metadata = info.reason, info.domain, dict(info.metadata)
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            packed.Unpack(bad_request)
            self.field_violations = [
                FieldViolation(field=v.field, description=v.description) for v in bad_request.field_violations
            ]
        elif packed.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            packed.Unpack(failure)
            self.precondition_types = [v.type for v in failure.violations]
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            self.retry_after_s = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
