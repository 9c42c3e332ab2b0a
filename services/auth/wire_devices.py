"""Proto ⇄ domain conversions of trusted devices and device step-up (the wire layer's device half)."""

from __future__ import annotations

from services.auth import wire
from services.auth.domain_devices import Device, DeviceOperation
from services.auth.proto_enums import (
    device_status_to_proto,
    key_algorithm_from_proto,
    key_algorithm_to_proto,
    platform_from_proto,
    platform_to_proto,
)
from services.auth.service_devices import DeviceStepUp
from wallet.auth.v1 import auth_devices_pb2 as devices_pb
from wallet.auth.v1 import auth_identity_pb2 as identity_pb


def device(value: Device) -> devices_pb.Device:
    return devices_pb.Device(
        device_id=value.device_id,
        display_name=value.display_name,
        platform=platform_to_proto(value.platform),
        model=value.model,
        app_version=value.app_version,
        key_algorithm=key_algorithm_to_proto(value.key_algorithm),
        public_key=value.public_key,
        status=device_status_to_proto(value.status),
        created_at=wire.timestamp(value.created_at),
        last_used_at=wire.timestamp(value.last_used_at),
        revoked_at=wire.timestamp(value.revoked_at),
    )


def device_from(request: devices_pb.RegisterDeviceRequest) -> Device:
    """The request's fields; owner, status and times are the use case's to set."""
    return Device(
        principal_id="",
        organization_id="",
        device_id=request.device_id,
        display_name=request.display_name,
        platform=platform_from_proto(request.platform),
        model=request.model,
        app_version=request.app_version,
        key_algorithm=key_algorithm_from_proto(request.key_algorithm),
        public_key=request.public_key,
        status="",
        created_at=0.0,
        last_used_at=0.0,
        revoked_at=None,
    )


def operation_from(value: devices_pb.DeviceOperation, has_amount: bool) -> DeviceOperation:
    return DeviceOperation(
        method=value.method,
        resource_id=value.resource_id,
        amount_currency=value.amount.currency if has_amount else "",
        amount_minor=value.amount.amount_minor if has_amount else None,
    )


def device_step_up(value: DeviceStepUp) -> identity_pb.StepUpToken:
    token = wire.step_up_token(value.token)
    token.bound_method = value.operation.method
    token.bound_resource_id = value.operation.resource_id
    return token
