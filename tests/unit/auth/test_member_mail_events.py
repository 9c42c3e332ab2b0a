"""Which auth events are member-facing security facts: admin resets (device or passkey), a member's new-device
sign-in, a principal lockout; never a customer's sign-in, an owner's own revocation or a source lockout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.auth.domain_member_mail import DevicesReset, LockedOut, NewDeviceSignIn
from services.auth.member_mail_events import security_fact
from wallet.auth.v1 import auth_devices_pb2, auth_events_pb2, auth_identity_pb2
from wallet.common.v1 import events_pb2

ORGANIZATION = str(uuid.uuid4())
MEMBER = str(uuid.uuid4())
ADMIN = str(uuid.uuid4())
AT = datetime(2026, 12, 8, 1, 30, tzinfo=UTC)


def envelope(payload: Message, event_id: str | None = None) -> events_pb2.EventEnvelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(AT)
    return events_pb2.EventEnvelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=payload.DESCRIPTOR.full_name,
        organization_id=ORGANIZATION,
        partition_key=MEMBER,
        occurred_at=occurred,
        payload=packed,
    )


def test_every_event_of_an_admin_reset_is_the_same_reset() -> None:
    device = envelope(
        auth_events_pb2.DeviceRevoked(principal_id=MEMBER, actor_principal_id=ADMIN, reset_by_admin=True)
    )
    passkey = envelope(
        auth_events_pb2.MfaChanged(
            principal_id=MEMBER, change=auth_events_pb2.MFA_CHANGE_PASSKEY_REMOVED, actor_principal_id=ADMIN
        )
    )
    expected = DevicesReset(ORGANIZATION, MEMBER, int(AT.timestamp() * 1e9))
    assert security_fact(device) == expected
    assert security_fact(passkey) == expected


def test_a_members_own_revocation_or_passkey_removal_is_no_notice() -> None:
    own_device = auth_events_pb2.DeviceRevoked(principal_id=MEMBER, actor_principal_id=MEMBER, reset_by_admin=False)
    own_passkey = auth_events_pb2.MfaChanged(principal_id=MEMBER, change=auth_events_pb2.MFA_CHANGE_PASSKEY_REMOVED)
    totp_by_admin = auth_events_pb2.MfaChanged(
        principal_id=MEMBER, change=auth_events_pb2.MFA_CHANGE_TOTP_REMOVED, actor_principal_id=ADMIN
    )
    for payload in (own_device, own_passkey, totp_by_admin):
        assert security_fact(envelope(payload)) is None


def test_a_members_new_device_sign_in_but_not_a_customers() -> None:
    event_id = str(uuid.uuid4())
    member = auth_events_pb2.NewDeviceLogin(
        principal_id=MEMBER,
        principal_kind=auth_identity_pb2.PRINCIPAL_KIND_MEMBER,
        platform=auth_devices_pb2.DEVICE_PLATFORM_IOS,
    )
    assert security_fact(envelope(member, event_id)) == NewDeviceSignIn(uuid.UUID(event_id), MEMBER, "iOS", AT)
    unregistered = auth_events_pb2.NewDeviceLogin(
        principal_id=MEMBER, principal_kind=auth_identity_pb2.PRINCIPAL_KIND_MEMBER
    )
    fact = security_fact(envelope(unregistered))
    assert isinstance(fact, NewDeviceSignIn)
    assert fact.platform_name is None
    customer = auth_events_pb2.NewDeviceLogin(
        principal_id=MEMBER, principal_kind=auth_identity_pb2.PRINCIPAL_KIND_CUSTOMER
    )
    assert security_fact(envelope(customer)) is None


def test_a_principal_lockout_but_not_a_source_lockout() -> None:
    until = timestamp_pb2.Timestamp()
    until.FromDatetime(datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    event_id = str(uuid.uuid4())
    principal = auth_events_pb2.PrincipalLockedOut(
        principal_id=MEMBER, scope=auth_events_pb2.LOCKOUT_SCOPE_PRINCIPAL, locked_until=until, failures=10
    )
    assert security_fact(envelope(principal, event_id)) == LockedOut(
        uuid.UUID(event_id), MEMBER, datetime(2026, 12, 8, 2, 0, tzinfo=UTC), 10
    )
    source = auth_events_pb2.PrincipalLockedOut(
        principal_id=MEMBER, scope=auth_events_pb2.LOCKOUT_SCOPE_SOURCE, locked_until=until, failures=30
    )
    assert security_fact(envelope(source)) is None


def test_other_events_and_envelopes_without_ids_are_ignored() -> None:
    login = auth_events_pb2.LoginSucceeded(
        principal_id=MEMBER, principal_kind=auth_identity_pb2.PRINCIPAL_KIND_MEMBER
    )
    assert security_fact(envelope(login)) is None
    reset = auth_events_pb2.DeviceRevoked(principal_id=MEMBER, actor_principal_id=ADMIN, reset_by_admin=True)
    assert security_fact(envelope(reset, event_id="not-a-uuid")) is None
    without_organization = envelope(reset)
    without_organization.organization_id = ""
    assert security_fact(without_organization) is None
