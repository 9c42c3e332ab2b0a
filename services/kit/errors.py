"""Error categories that domain and service code raise; the kit maps them to gRPC status codes.

Pure Python, no grpc import, so ``domain.py`` modules can subclass these. Each concrete error declares a stable
``reason`` (an ``ErrorReason`` value name from ``wallet/common/v1/errors.proto`` without its prefix); the kit's
interceptor turns the category into the canonical code and attaches ``google.rpc.ErrorInfo`` and the other details
(see ``services.kit.status``). Messages are shown to callers: never put a secret or personal data in one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar


class Category(enum.Enum):
    """The canonical gRPC code an error maps to (names match ``grpc.StatusCode``)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    ABORTED = "ABORTED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    DATA_LOSS = "DATA_LOSS"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: ``field`` is the proto field path (``amount.amount_minor``)."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One unmet precondition (``type`` e.g. ``STEP_UP``, ``subject`` what it applies to)."""

    type: str
    subject: str
    description: str


class WalletError(Exception):
    """Base of every expected error. Subclasses set ``category`` and ``reason``."""

    category: ClassVar[Category] = Category.INTERNAL
    reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        metadata: Mapping[str, str | int] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        precondition_violations: Sequence[PreconditionViolation] = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = {key: str(value) for key, value in (metadata or {}).items()}
        self.field_violations = tuple(field_violations)
        self.precondition_violations = tuple(precondition_violations)
        self.retry_after_s = retry_after_s


class InvalidArgument(WalletError):
    category = Category.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"


class NotFound(WalletError):
    """Also what another tenant's resource looks like: never PERMISSION_DENIED across tenants."""

    category = Category.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(WalletError):
    category = Category.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(WalletError):
    category = Category.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class PermissionDenied(WalletError):
    category = Category.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(WalletError):
    category = Category.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Aborted(WalletError):
    category = Category.ABORTED
    reason = "CONFLICT"


class ResourceExhausted(WalletError):
    category = Category.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"


class Unavailable(WalletError):
    category = Category.UNAVAILABLE
    reason = "DEPENDENCY_UNAVAILABLE"


class DataLoss(WalletError):
    """Stored data failed an integrity check (an authentication tag, a hash): never returned as garbage."""

    category = Category.DATA_LOSS
    reason = "INTERNAL"


class NotImplementedYet(WalletError):
    """An RPC declared in the contract but not built yet: UNIMPLEMENTED, never a fake success."""

    category = Category.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class StepUpRequired(FailedPrecondition):
    reason = "STEP_UP_REQUIRED"

    def __init__(self, message: str = "this operation needs a fresh step-up authentication") -> None:
        super().__init__(
            message,
            precondition_violations=[
                PreconditionViolation(type="STEP_UP", subject="access_token", description=message),
            ],
        )


class IdempotencyKeyReused(AlreadyExists):
    """The same client-chosen id arrived with different content; names the first differing field."""

    reason = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, id_field: str, differing_field: str) -> None:
        super().__init__(
            f"{id_field} was already used with a different {differing_field}",
            metadata={"id_field": id_field, "field": differing_field},
        )


def first_differing_field(checks: Iterable[tuple[str, object, object]]) -> str | None:
    """The name of the first ``(field, wanted, stored)`` whose values differ: what ``IdempotencyKeyReused`` names
    when a replayed request's content does not match what the first request stored."""
    for field, wanted, stored in checks:
        if wanted != stored:
            return field
    return None


def invalid(violations: Sequence[FieldViolation]) -> InvalidArgument:
    """One ``InvalidArgument`` listing every violation found (callers collect them all, not just the first)."""
    assert violations, "invalid() needs at least one violation"
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return InvalidArgument(f"invalid request: {summary}", field_violations=violations)
