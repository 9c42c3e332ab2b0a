"""Which auth events show a principal on a device (pure part of services/risk/device_consumer.py)."""

from __future__ import annotations

from google.protobuf.message import Message

from services.kit.outbox import make_envelope
from services.risk.device_consumer import DeviceSighting, sighting_of
from wallet.auth.v1 import auth_events_pb2

ORG, PRINCIPAL, DEVICE = "org-1", "principal-1", "device-1"
AT_S = 1_800_000_000.0


def _sighting(payload: Message, organization_id: str = ORG) -> DeviceSighting | None:
    envelope = make_envelope(
        event_type_payload=payload, organization_id=organization_id, partition_key=PRINCIPAL, occurred_at_s=AT_S
    )
    return sighting_of(envelope)


def test_sign_ins_and_registrations_are_sightings() -> None:
    source = auth_events_pb2.EventSource(device_id=DEVICE)
    expected = DeviceSighting(ORG, PRINCIPAL, DEVICE, AT_S)
    assert _sighting(auth_events_pb2.NewDeviceLogin(principal_id=PRINCIPAL, source=source)) == expected
    assert _sighting(auth_events_pb2.LoginSucceeded(principal_id=PRINCIPAL, source=source)) == expected
    assert _sighting(auth_events_pb2.DeviceRegistered(principal_id=PRINCIPAL, device_id=DEVICE)) == expected


def test_events_without_a_device_principal_or_tenant_are_not() -> None:
    assert _sighting(auth_events_pb2.LoginSucceeded(principal_id=PRINCIPAL)) is None
    no_principal = auth_events_pb2.NewDeviceLogin(source=auth_events_pb2.EventSource(device_id=DEVICE))
    assert _sighting(no_principal) is None
    registered = auth_events_pb2.DeviceRegistered(principal_id=PRINCIPAL, device_id=DEVICE)
    assert _sighting(registered, organization_id="") is None
    too_long = auth_events_pb2.DeviceRegistered(principal_id=PRINCIPAL, device_id="x" * 129)
    assert _sighting(too_long) is None
    assert _sighting(auth_events_pb2.PasswordChanged(principal_id=PRINCIPAL)) is None
