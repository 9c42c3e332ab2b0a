"""Who is calling, in the vault's terms: the tenant, the principal and, for customers, the data subject they are."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from opentelemetry import trace

from services.contacts.domain import ContactNotFound
from services.contacts.domain_access_log import AccessAction, AccessLogEntry
from services.kit.errors import FieldViolation, Unauthenticated, invalid
from services.kit.ids import uuid7
from services.kit.request_context import current_principal
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_SERVICE


@dataclass(frozen=True, slots=True)
class Caller:
    organization_id: UUID
    principal_id: str
    kind: str
    # Set for customers: they act on their own data only.
    customer_id: UUID | None

    @property
    def is_customer(self) -> bool:
        return self.customer_id is not None

    @property
    def is_service(self) -> bool:
        return self.kind == PRINCIPAL_KIND_SERVICE

    def subject_for_write(self, requested: UUID | None) -> UUID:
        """The data subject a write acts on: a customer's own id; others must name one."""
        if self.customer_id is not None:
            if requested is not None and requested != self.customer_id:
                raise invalid([FieldViolation("customer_id", "a customer may only act on its own data")])
            return self.customer_id
        if requested is None:
            raise invalid([FieldViolation("customer_id", "is required")])
        return requested

    def check_subject_visible(self, customer_id: UUID) -> None:
        """Another customer's data looks like nothing at all (NOT_FOUND)."""
        if self.customer_id is not None and self.customer_id != customer_id:
            raise ContactNotFound()


def current_caller() -> Caller:
    principal = current_principal()
    if principal is None:
        raise Unauthenticated("no authenticated principal")
    try:
        organization_id = uuid.UUID(principal.organization_id)
    except ValueError:
        raise Unauthenticated("access token names no valid organization") from None
    customer_id: UUID | None = None
    if principal.kind == PRINCIPAL_KIND_CUSTOMER:
        try:
            customer_id = uuid.UUID(principal.subject)
        except ValueError:
            raise Unauthenticated("access token names no valid customer") from None
    return Caller(organization_id, principal.subject, principal.kind, customer_id)


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def access_entry(
    caller: Caller,
    action: AccessAction,
    customer_id: UUID,
    now: datetime,
    *,
    contact_id: UUID | None = None,
    card_secret_id: UUID | None = None,
    on_behalf_of: str = "",
    reveal_purpose: int = 0,
    justification: str = "",
) -> AccessLogEntry:
    """An access-log entry for what ``caller`` is doing now: who, why, when and the trace, never the value."""
    return AccessLogEntry(
        organization_id=caller.organization_id,
        access_log_entry_id=uuid7(),
        customer_id=customer_id,
        contact_id=contact_id,
        card_secret_id=card_secret_id,
        action=action,
        actor_principal_id=caller.principal_id,
        on_behalf_of_principal_id=on_behalf_of,
        reveal_purpose=reveal_purpose,
        justification=justification,
        trace_id=current_trace_id(),
        occurred_at=now,
    )
