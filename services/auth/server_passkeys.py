"""gRPC handlers of WebAuthn passkeys (wire only; see server.py). StepUp with a passkey is in server_sessions.py."""

from __future__ import annotations

from webauthn.helpers import bytes_to_base64url

from services.auth import service_passkeys, wire
from services.auth.domain_passkeys import Passkey
from services.auth.server_base import Context, HandlerBase
from wallet.auth.v1 import auth_passkeys_pb2 as passkeys_pb


def _passkey(value: Passkey) -> passkeys_pb.Passkey:
    return passkeys_pb.Passkey(
        passkey_id=value.passkey_id,
        display_name=value.display_name,
        credential_id=bytes_to_base64url(value.credential_id),
        aaguid=value.aaguid,
        backup_eligible=value.backup_eligible,
        backed_up=value.backed_up,
        created_at=wire.timestamp(value.created_at),
        last_used_at=wire.timestamp(value.last_used_at),
    )


class PasskeyHandlers(HandlerBase):
    async def BeginPasskeyRegistration(
        self, request: passkeys_pb.BeginPasskeyRegistrationRequest, context: Context
    ) -> passkeys_pb.BeginPasskeyRegistrationResponse:
        start = await service_passkeys.begin_registration(self._core)
        return passkeys_pb.BeginPasskeyRegistrationResponse(
            passkey_registration_id=start.ceremony_id,
            creation_options_json=start.options_json,
            expires_at=wire.timestamp(start.expires_at),
        )

    async def FinishPasskeyRegistration(
        self, request: passkeys_pb.FinishPasskeyRegistrationRequest, context: Context
    ) -> passkeys_pb.FinishPasskeyRegistrationResponse:
        passkey = await service_passkeys.finish_registration(
            self._core,
            ceremony_id=request.passkey_registration_id,
            credential_json=request.credential_json,
            display_name=request.display_name,
            source=self._source(context),
        )
        return passkeys_pb.FinishPasskeyRegistrationResponse(passkey=_passkey(passkey))

    async def BeginPasskeyAuthentication(
        self, request: passkeys_pb.BeginPasskeyAuthenticationRequest, context: Context
    ) -> passkeys_pb.BeginPasskeyAuthenticationResponse:
        start = await service_passkeys.begin_authentication(
            self._core, organization_slug=request.organization_slug, login_name=request.login
        )
        return passkeys_pb.BeginPasskeyAuthenticationResponse(
            passkey_challenge_id=start.ceremony_id,
            request_options_json=start.options_json,
            expires_at=wire.timestamp(start.expires_at),
        )

    async def FinishPasskeyAuthentication(
        self, request: passkeys_pb.FinishPasskeyAuthenticationRequest, context: Context
    ) -> passkeys_pb.FinishPasskeyAuthenticationResponse:
        tokens = await service_passkeys.finish_authentication(
            self._core,
            ceremony_id=request.assertion.passkey_challenge_id,
            credential_json=request.assertion.credential_json,
            source=self._source(context, request.device_id),
        )
        return passkeys_pb.FinishPasskeyAuthenticationResponse(tokens=wire.token_pair(tokens))

    async def ListPasskeys(
        self, request: passkeys_pb.ListPasskeysRequest, context: Context
    ) -> passkeys_pb.ListPasskeysResponse:
        page = await service_passkeys.list_passkeys(
            self._core, page_size_requested=request.page_size, page_token=request.page_token
        )
        return passkeys_pb.ListPasskeysResponse(
            passkeys=[_passkey(p) for p in page.passkeys], next_page_token=page.next_page_token
        )

    async def DeletePasskey(
        self, request: passkeys_pb.DeletePasskeyRequest, context: Context
    ) -> passkeys_pb.DeletePasskeyResponse:
        deleted = await service_passkeys.delete_passkey(
            self._core, passkey_id=request.passkey_id, request_id=request.request_id, source=self._source(context)
        )
        return passkeys_pb.DeletePasskeyResponse(passkey=_passkey(deleted))
