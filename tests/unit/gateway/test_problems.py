import grpc
import pytest

from gateway.problems import HTTP_STATUS, INTERNAL_DETAIL, details_of_wallet_error, problem_from_details
from services.kit.errors import FieldViolation, ResourceExhausted, Unauthenticated, invalid
from services.kit.status import ErrorDetails
from wallet.ledger.v1 import ledger_transfers_pb2


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.INTERNAL, 500),
    ],
)
def test_standard_grpc_to_http_mapping(code: grpc.StatusCode, status: int) -> None:
    assert HTTP_STATUS[code] == status
    assert problem_from_details(ErrorDetails(code=code, message="m"), trace_id="t").status == status


def test_every_status_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)


def test_upstream_details_become_code_errors_and_field_names_in_json_spelling() -> None:
    details = ErrorDetails(
        code=grpc.StatusCode.FAILED_PRECONDITION,
        message="insufficient funds",
        reason="INSUFFICIENT_FUNDS",
        domain="ledger.wallet",
        metadata={"available_minor": "10"},
        field_violations=[FieldViolation("amount.amount_minor", "must be positive")],
    )
    problem = problem_from_details(
        details, trace_id="abc", request_message=ledger_transfers_pb2.CreateTransferRequest.DESCRIPTOR
    )
    assert problem.status == 400
    assert problem.body["code"] == "INSUFFICIENT_FUNDS"
    assert problem.body["type"] == "urn:wallet:problem:INSUFFICIENT_FUNDS"
    assert problem.body["traceId"] == "abc"
    assert problem.body["detail"] == "insufficient funds"
    assert problem.body["metadata"] == {"available_minor": "10"}
    assert problem.body["errors"] == [{"field": "amount.amountMinor", "description": "must be positive"}]


def test_internal_errors_never_carry_the_upstream_text() -> None:
    details = ErrorDetails(code=grpc.StatusCode.UNKNOWN, message='Traceback (most recent call last): File "x.py"')
    problem = problem_from_details(details, trace_id="t")
    assert problem.status == 500
    assert problem.body["detail"] == INTERNAL_DETAIL
    assert "Traceback" not in problem.encoded().decode()


def test_transport_failures_get_a_generic_text_and_a_reason() -> None:
    details = ErrorDetails(
        code=grpc.StatusCode.UNAVAILABLE, message="failed to connect to all addresses; ipv4:10.0.0.1"
    )
    problem = problem_from_details(details, trace_id="t")
    assert problem.status == 503
    assert problem.body["code"] == "DEPENDENCY_UNAVAILABLE"
    assert "10.0.0.1" not in problem.encoded().decode()


def test_retry_info_becomes_retry_after_rounded_up() -> None:
    problem = problem_from_details(
        details_of_wallet_error(ResourceExhausted("slow down", retry_after_s=1.2)), trace_id="t"
    )
    assert problem.status == 429
    assert problem.retry_after_s == 2
    assert problem.body["code"] == "RATE_LIMITED"


def test_gateway_errors_keep_their_field_names() -> None:
    problem = problem_from_details(
        details_of_wallet_error(invalid([FieldViolation("*", "malformed JSON")])), trace_id=""
    )
    assert problem.body["errors"] == [{"field": "*", "description": "malformed JSON"}]
    unauthenticated = problem_from_details(details_of_wallet_error(Unauthenticated("missing")), trace_id="")
    assert unauthenticated.status == 401
    assert unauthenticated.body["code"] == "UNAUTHENTICATED"
