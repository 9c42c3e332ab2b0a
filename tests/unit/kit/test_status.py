import grpc
from google.rpc import error_details_pb2

from services.kit.errors import (
    DataLoss,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    StepUpRequired,
    invalid,
)
from services.kit.status import INTERNAL_MESSAGE, internal_rpc_status, status_code, to_rpc_status


def _unpack(status_details: list[object], message_type: type) -> object:
    for packed in status_details:
        candidate = message_type()
        if packed.Is(candidate.DESCRIPTOR):  # type: ignore[attr-defined]
            packed.Unpack(candidate)  # type: ignore[attr-defined]
            return candidate
    raise AssertionError(f"no {message_type.__name__} in details")


def test_invalid_argument_carries_error_info_and_field_violations() -> None:
    error = invalid([FieldViolation("amount.amount_minor", "must be positive"), FieldViolation("transfer_id", "x")])
    status = to_rpc_status(error, "ledger.wallet")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info = _unpack(list(status.details), error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_REQUEST", "ledger.wallet")  # type: ignore[attr-defined]
    bad_request = _unpack(list(status.details), error_details_pb2.BadRequest)
    fields = [v.field for v in bad_request.field_violations]  # type: ignore[attr-defined]
    assert fields == ["amount.amount_minor", "transfer_id"]


def test_metadata_values_become_strings() -> None:
    class InsufficientFunds(InvalidArgument):
        reason = "INSUFFICIENT_FUNDS"

    status = to_rpc_status(InsufficientFunds("not enough", metadata={"available_minor": 1250}), "ledger.wallet")
    info = _unpack(list(status.details), error_details_pb2.ErrorInfo)
    assert dict(info.metadata) == {"available_minor": "1250"}  # type: ignore[attr-defined]


def test_step_up_is_failed_precondition_with_precondition_failure() -> None:
    status = to_rpc_status(StepUpRequired(), "contacts.wallet")
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    failure = _unpack(list(status.details), error_details_pb2.PreconditionFailure)
    assert failure.violations[0].type == "STEP_UP"  # type: ignore[attr-defined]


def test_rate_limit_carries_retry_info() -> None:
    status = to_rpc_status(ResourceExhausted("slow down", retry_after_s=1.5), "auth.wallet")
    retry = _unpack(list(status.details), error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 500_000_000)  # type: ignore[attr-defined]


def test_idempotency_reuse_names_the_field() -> None:
    error = IdempotencyKeyReused("transfer_id", "amount")
    status = to_rpc_status(error, "ledger.wallet")
    assert status.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    info = _unpack(list(status.details), error_details_pb2.ErrorInfo)
    assert info.reason == "IDEMPOTENCY_KEY_REUSED"  # type: ignore[attr-defined]
    assert info.metadata["field"] == "amount"  # type: ignore[attr-defined]


def test_internal_status_is_generic() -> None:
    status = internal_rpc_status("risk.wallet")
    assert status.message == INTERNAL_MESSAGE
    assert status.code == grpc.StatusCode.INTERNAL.value[0]


def test_every_category_maps_to_a_grpc_code() -> None:
    assert status_code(NotFound.category) is grpc.StatusCode.NOT_FOUND


def test_data_loss_maps_to_data_loss() -> None:
    status = to_rpc_status(DataLoss("stored data failed its integrity check"), "contacts.wallet")
    assert status.code == grpc.StatusCode.DATA_LOSS.value[0]
    info = _unpack(list(status.details), error_details_pb2.ErrorInfo)
    assert info.reason == "INTERNAL"  # type: ignore[attr-defined]
