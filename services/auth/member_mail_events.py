"""Auth event envelopes → the security facts a member is mailed about (``domain_member_mail``): an admin's device
reset (``DeviceRevoked`` with ``reset_by_admin``, or a passkey removed by someone else than its owner), a member's
first sign-in from a new device, a principal's lockout. Anything else — and a customer's new-device sign-in, which
the vault texts — is None. Whether a locked-out principal is a member is the recipient look-up's business: the
lockout event does not say."""

from __future__ import annotations

import uuid
from datetime import UTC

from services.auth.domain_member_mail import DevicesReset, LockedOut, NewDeviceSignIn, SecurityFact
from wallet.auth.v1 import auth_devices_pb2, auth_events_pb2, auth_identity_pb2
from wallet.common.v1 import events_pb2

DEVICE_REVOKED = auth_events_pb2.DeviceRevoked.DESCRIPTOR.full_name
MFA_CHANGED = auth_events_pb2.MfaChanged.DESCRIPTOR.full_name
NEW_DEVICE_LOGIN = auth_events_pb2.NewDeviceLogin.DESCRIPTOR.full_name
PRINCIPAL_LOCKED_OUT = auth_events_pb2.PrincipalLockedOut.DESCRIPTOR.full_name
PLATFORM_NAMES: dict[int, str] = {
    auth_devices_pb2.DEVICE_PLATFORM_IOS: "iOS",
    auth_devices_pb2.DEVICE_PLATFORM_ANDROID: "Android",
    auth_devices_pb2.DEVICE_PLATFORM_WEB: "a web browser",
}


def _event_id(envelope: events_pb2.EventEnvelope) -> uuid.UUID | None:
    try:
        return uuid.UUID(envelope.event_id)
    except ValueError:
        return None


def _reset(envelope: events_pb2.EventEnvelope, principal_id: str) -> DevicesReset | None:
    occurred_at_ns = envelope.occurred_at.ToNanoseconds()
    if occurred_at_ns <= 0:
        return None
    return DevicesReset(envelope.organization_id, principal_id, occurred_at_ns)


def _devices_reset(envelope: events_pb2.EventEnvelope) -> DevicesReset | None:
    if envelope.event_type == DEVICE_REVOKED:
        revoked = auth_events_pb2.DeviceRevoked()
        envelope.payload.Unpack(revoked)
        return _reset(envelope, revoked.principal_id) if revoked.reset_by_admin else None
    changed = auth_events_pb2.MfaChanged()
    envelope.payload.Unpack(changed)
    by_someone_else = changed.actor_principal_id not in ("", changed.principal_id)
    if changed.change != auth_events_pb2.MFA_CHANGE_PASSKEY_REMOVED or not by_someone_else:
        return None
    return _reset(envelope, changed.principal_id)


def security_fact(envelope: events_pb2.EventEnvelope) -> SecurityFact | None:
    event_id = _event_id(envelope)
    if event_id is None or not envelope.organization_id:
        return None  # nothing to send it once under
    if envelope.event_type in (DEVICE_REVOKED, MFA_CHANGED):
        return _devices_reset(envelope)
    if envelope.event_type == NEW_DEVICE_LOGIN:
        login = auth_events_pb2.NewDeviceLogin()
        envelope.payload.Unpack(login)
        if login.principal_kind != auth_identity_pb2.PRINCIPAL_KIND_MEMBER:
            return None
        platform = PLATFORM_NAMES.get(login.platform)
        return NewDeviceSignIn(event_id, login.principal_id, platform, envelope.occurred_at.ToDatetime(tzinfo=UTC))
    if envelope.event_type == PRINCIPAL_LOCKED_OUT:
        locked = auth_events_pb2.PrincipalLockedOut()
        envelope.payload.Unpack(locked)
        if locked.scope != auth_events_pb2.LOCKOUT_SCOPE_PRINCIPAL:
            return None  # a source lockout concerns an address, not one member
        until = locked.locked_until.ToDatetime(tzinfo=UTC)
        return LockedOut(event_id, locked.principal_id, until, locked.failures)
    return None
