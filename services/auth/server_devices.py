"""gRPC handlers of trusted devices and the biometric step-up (wire only; see server.py)."""

from __future__ import annotations

from services.auth import service_devices, wire, wire_devices
from services.auth.proto_enums import user_verification_from_proto
from services.auth.server_base import Context, HandlerBase
from wallet.auth.v1 import auth_devices_pb2 as devices_pb
from wallet.auth.v1 import auth_members_pb2 as members_pb


class DeviceHandlers(HandlerBase):
    async def RegisterDevice(
        self, request: devices_pb.RegisterDeviceRequest, context: Context
    ) -> devices_pb.RegisterDeviceResponse:
        registered = await service_devices.register_device(
            self._core,
            device=wire_devices.device_from(request),
            key_proof=request.key_proof,
            attestation=request.attestation,
            source=self._source(context),
        )
        return devices_pb.RegisterDeviceResponse(device=wire_devices.device(registered))

    async def ListDevices(
        self, request: devices_pb.ListDevicesRequest, context: Context
    ) -> devices_pb.ListDevicesResponse:
        page = await service_devices.list_devices(
            self._core,
            page_size_requested=request.page_size,
            page_token=request.page_token,
            include_revoked=request.include_revoked,
        )
        return devices_pb.ListDevicesResponse(
            devices=[wire_devices.device(d) for d in page.devices], next_page_token=page.next_page_token
        )

    async def RenameDevice(
        self, request: devices_pb.RenameDeviceRequest, context: Context
    ) -> devices_pb.RenameDeviceResponse:
        renamed = await service_devices.rename_device(
            self._core, device_id=request.device_id, display_name=request.display_name, request_id=request.request_id
        )
        return devices_pb.RenameDeviceResponse(device=wire_devices.device(renamed))

    async def RevokeDevice(
        self, request: devices_pb.RevokeDeviceRequest, context: Context
    ) -> devices_pb.RevokeDeviceResponse:
        revoked = await service_devices.revoke_device(
            self._core, device_id=request.device_id, request_id=request.request_id
        )
        return devices_pb.RevokeDeviceResponse(device=wire_devices.device(revoked))

    async def CreateDeviceChallenge(
        self, request: devices_pb.CreateDeviceChallengeRequest, context: Context
    ) -> devices_pb.CreateDeviceChallengeResponse:
        challenge = await service_devices.create_device_challenge(
            self._core,
            device_id=request.device_id,
            operation=wire_devices.operation_from(request.operation, request.operation.HasField("amount")),
        )
        return devices_pb.CreateDeviceChallengeResponse(
            device_challenge_id=challenge.device_challenge_id,
            signing_payload=challenge.signing_payload,
            expires_at=wire.timestamp(challenge.expires_at),
        )

    async def StepUpWithDevice(
        self, request: devices_pb.StepUpWithDeviceRequest, context: Context
    ) -> devices_pb.StepUpWithDeviceResponse:
        step_up = await service_devices.step_up_with_device(
            self._core,
            device_challenge_id=request.device_challenge_id,
            signature=request.signature,
            user_verification=user_verification_from_proto(request.user_verification),
            source=self._source(context),
        )
        return devices_pb.StepUpWithDeviceResponse(step_up=wire_devices.device_step_up(step_up))

    async def ResetMemberDevices(
        self, request: members_pb.ResetMemberDevicesRequest, context: Context
    ) -> members_pb.ResetMemberDevicesResponse:
        reset = await service_devices.reset_member_devices(
            self._core, member_id=request.member_id, request_id=request.request_id
        )
        return members_pb.ResetMemberDevicesResponse(
            revoked_device_count=reset.revoked_device_count,
            removed_passkey_count=reset.removed_passkey_count,
            revoked_session_count=reset.revoked_session_count,
        )
