"""gRPC statuses → RFC 9457 ``application/problem+json``.

The HTTP status follows the standard gRPC → HTTP mapping (``google/rpc/code.proto``). FAILED_PRECONDITION is 400, as
that mapping says, not 412: HTTP 412 is about conditional request headers (``If-Match``), which the wallet does not
use; the ``code`` member (the ErrorInfo reason, e.g. ``STEP_UP_REQUIRED`` or ``ACCOUNT_FROZEN``) tells clients which
precondition failed. The body never carries a stack trace: the service's message (written for callers), the reason,
the field violations and the trace id to quote.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor

from gateway.transcode import json_path
from services.kit.errors import WalletError
from services.kit.status import ErrorDetails, status_code

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:wallet:problem:"

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Where the service sent no ErrorInfo (a transport failure, a deadline), the code stands in for the reason.
_FALLBACK_REASON: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "DEPENDENCY_UNAVAILABLE",
    grpc.StatusCode.UNAVAILABLE: "DEPENDENCY_UNAVAILABLE",
    grpc.StatusCode.UNIMPLEMENTED: "NOT_IMPLEMENTED",
    grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
    grpc.StatusCode.PERMISSION_DENIED: "PERMISSION_DENIED",
    grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
    grpc.StatusCode.INVALID_ARGUMENT: "INVALID_REQUEST",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RATE_LIMITED",
}
INTERNAL_DETAIL = "internal error; quote the trace id when reporting it"
_INTERNAL_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})
_TRANSPORT_DETAIL: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "the service did not answer in time",
    grpc.StatusCode.UNAVAILABLE: "the service is unavailable; retry with backoff",
    grpc.StatusCode.CANCELLED: "the call was cancelled",
}


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    body: dict[str, Any]
    retry_after_s: int | None

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


def details_of_wallet_error(error: WalletError) -> ErrorDetails:
    """A gateway-side refusal (bad JSON, no token, rate limit) in the same shape as an upstream failure."""
    return ErrorDetails(
        code=status_code(error.category),
        message=error.message,
        reason=error.reason,
        domain="gateway.wallet",
        metadata=dict(error.metadata),
        field_violations=list(error.field_violations),
        retry_after_s=error.retry_after_s,
    )


def problem_from_details(
    details: ErrorDetails,
    *,
    trace_id: str,
    request_message: Descriptor | None = None,
    http_status: int | None = None,
) -> Problem:
    """``request_message`` turns the service's proto field paths into the JSON spelling the client used."""
    status = http_status or HTTP_STATUS.get(details.code, 500)
    reason = details.reason or _FALLBACK_REASON.get(details.code, "INTERNAL")
    from_service = details.domain not in ("", "gateway.wallet")
    detail = details.message
    if details.code in _INTERNAL_CODES:
        detail = INTERNAL_DETAIL
    elif details.code in _TRANSPORT_DETAIL and not details.reason:
        # No ErrorInfo: grpc itself failed the call (deadline, connection); its text is not written for clients.
        detail = _TRANSPORT_DETAIL[details.code]
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + reason,
        "title": details.code.name.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": reason,
        "traceId": trace_id,
    }
    if details.field_violations:
        body["errors"] = [
            {
                "field": json_path(request_message, violation.field)
                if request_message is not None and from_service
                else violation.field,
                "description": violation.description,
            }
            for violation in details.field_violations
        ]
    if details.metadata:
        body["metadata"] = dict(details.metadata)
    if details.precondition_types:
        body["preconditions"] = list(details.precondition_types)
    retry_after_s = None
    if details.retry_after_s is not None:
        retry_after_s = max(1, math.ceil(details.retry_after_s))
        body["retryAfterSeconds"] = retry_after_s
    return Problem(status=status, body=body, retry_after_s=retry_after_s)
