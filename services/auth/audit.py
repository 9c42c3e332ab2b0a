"""Recording auth events: one append-only audit row plus the same fact as a ``wallet.auth.v1`` event in the outbox
(relayed to the ``wallet.auth.v1.events`` stream), in the caller's transaction. Never a secret: payloads carry ids,
reasons, addresses and times only."""

from __future__ import annotations

import uuid

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry import trace

from services.auth.domain_records import AuditRecord, Source
from services.auth.service import AuthTransaction
from services.kit.ids import uuid7
from services.kit.outbox import make_envelope
from wallet.auth.v1 import auth_events_pb2 as events

STREAM = "wallet.auth.v1.events"

# Payload message → AuthEventType value name without its prefix.
EVENT_TYPES: dict[str, str] = {
    events.LoginSucceeded.DESCRIPTOR.full_name: "LOGIN_SUCCEEDED",
    events.LoginFailed.DESCRIPTOR.full_name: "LOGIN_FAILED",
    events.PrincipalLockedOut.DESCRIPTOR.full_name: "LOCKED_OUT",
    events.PrincipalUnlocked.DESCRIPTOR.full_name: "UNLOCKED",
    events.NewDeviceLogin.DESCRIPTOR.full_name: "NEW_DEVICE_LOGIN",
    events.MfaChanged.DESCRIPTOR.full_name: "MFA_CHANGED",
    events.StepUpSucceeded.DESCRIPTOR.full_name: "STEP_UP_SUCCEEDED",
    events.StepUpFailed.DESCRIPTOR.full_name: "STEP_UP_FAILED",
    events.PasswordChanged.DESCRIPTOR.full_name: "PASSWORD_CHANGED",
    events.SessionRevoked.DESCRIPTOR.full_name: "SESSION_REVOKED",
    events.RefreshTokenReused.DESCRIPTOR.full_name: "REFRESH_TOKEN_REUSED",
    events.DeviceRegistered.DESCRIPTOR.full_name: "DEVICE_REGISTERED",
    events.DeviceRevoked.DESCRIPTOR.full_name: "DEVICE_REVOKED",
    events.DeviceRegistrationRefused.DESCRIPTOR.full_name: "DEVICE_REGISTRATION_REFUSED",
    events.SigningKeyRotated.DESCRIPTOR.full_name: "SIGNING_KEY_ROTATED",
    events.PrincipalCreated.DESCRIPTOR.full_name: "PRINCIPAL_CREATED",
    events.PrincipalStatusChanged.DESCRIPTOR.full_name: "PRINCIPAL_STATUS_CHANGED",
    events.RolesChanged.DESCRIPTOR.full_name: "ROLES_CHANGED",
    events.ServiceAccountSecretRotated.DESCRIPTOR.full_name: "SERVICE_ACCOUNT_SECRET_ROTATED",
    events.OrganizationPolicyChanged.DESCRIPTOR.full_name: "ORGANIZATION_POLICY_CHANGED",
    events.AuditEventsExported.DESCRIPTOR.full_name: "AUDIT_EVENTS_EXPORTED",
}


def event_source(source: Source) -> events.EventSource:
    return events.EventSource(source_ip=source.ip, user_agent=source.user_agent, device_id=source.device_id)


def _flatten(value: object, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        out[prefix] = ",".join(str(item) for item in value)
    else:
        out[prefix] = str(value)


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


async def record(
    tx: AuthTransaction,
    payload: Message,
    *,
    organization_id: str,
    principal_id: str,
    now_s: float,
    actor_principal_id: str = "",
    source: Source | None = None,
) -> None:
    event_type = EVENT_TYPES[payload.DESCRIPTOR.full_name]
    event_id = uuid7(int(now_s * 1000))
    details: dict[str, str] = {}
    _flatten(MessageToDict(payload, preserving_proto_field_name=True), "", details)
    audit = AuditRecord(
        audit_event_id=str(event_id),
        organization_id=organization_id,
        event_type=event_type,
        principal_id=principal_id,
        actor_principal_id=actor_principal_id,
        source_ip=source.ip if source is not None else "",
        trace_id=_trace_id(),
        occurred_at=now_s,
        details=details,
    )
    envelope = make_envelope(
        event_type_payload=payload,
        organization_id=organization_id,
        partition_key=principal_id or (source.ip if source is not None else "") or "unknown",
        event_id=uuid.UUID(str(event_id)),
        occurred_at_s=now_s,
    )
    await tx.insert_audit(audit, STREAM, envelope)
