"""gRPC handlers of sign-in, sessions, keys and tokens, credentials and the audit trail (wire only; see server.py)."""

from __future__ import annotations

from services.auth import (
    service_accounts,
    service_audit,
    service_credentials,
    service_keys,
    service_login,
    service_passkeys,
    service_sessions,
    wire,
)
from services.auth.core import TOKEN_TYPE
from services.auth.server_base import Context, HandlerBase
from wallet.auth.v1 import (
    auth_audit_pb2 as audit_pb,
)
from wallet.auth.v1 import (
    auth_credentials_pb2 as credentials_pb,
)
from wallet.auth.v1 import (
    auth_keys_pb2 as keys_pb,
)
from wallet.auth.v1 import (
    auth_sessions_pb2 as sessions_pb,
)

_OUTCOMES = {
    service_login.LoginOutcome.AUTHENTICATED: sessions_pb.LOGIN_OUTCOME_AUTHENTICATED,
    service_login.LoginOutcome.MFA_REQUIRED: sessions_pb.LOGIN_OUTCOME_MFA_REQUIRED,
    service_login.LoginOutcome.MFA_ENROLMENT_REQUIRED: sessions_pb.LOGIN_OUTCOME_MFA_ENROLMENT_REQUIRED,
}


class SessionHandlers(HandlerBase):
    # --- sign-in ----------------------------------------------------------------------------------------------

    async def Login(self, request: sessions_pb.LoginRequest, context: Context) -> sessions_pb.LoginResponse:
        result = await service_login.login(
            self._core,
            organization_slug=request.organization_slug,
            login_name=request.login,
            password=request.password,
            source=self._source(context, request.device_id),
        )
        challenge = None
        if result.challenge is not None:
            challenge = sessions_pb.MfaChallenge(
                mfa_challenge_id=result.challenge.mfa_challenge_id,
                expires_at=wire.timestamp(result.challenge.expires_at),
                methods=[sessions_pb.MFA_METHOD_TOTP, sessions_pb.MFA_METHOD_RECOVERY_CODE],
            )
        return sessions_pb.LoginResponse(
            outcome=_OUTCOMES[result.outcome],
            tokens=wire.token_pair(result.tokens) if result.tokens else None,
            mfa_challenge=challenge,
        )

    async def VerifyMfa(
        self, request: sessions_pb.VerifyMfaRequest, context: Context
    ) -> sessions_pb.VerifyMfaResponse:
        result = await service_login.verify_mfa(
            self._core,
            mfa_challenge_id=request.mfa_challenge_id,
            totp_code=request.totp_code,
            recovery_code=request.recovery_code,
            source=self._source(context),
        )
        return sessions_pb.VerifyMfaResponse(
            tokens=wire.token_pair(result.tokens), recovery_codes_left=result.recovery_codes_left
        )

    async def RefreshToken(
        self, request: sessions_pb.RefreshTokenRequest, context: Context
    ) -> sessions_pb.RefreshTokenResponse:
        tokens = await service_sessions.refresh_token(
            self._core, refresh_token_value=request.refresh_token, source=self._source(context)
        )
        return sessions_pb.RefreshTokenResponse(tokens=wire.token_pair(tokens))

    async def Logout(self, request: sessions_pb.LogoutRequest, context: Context) -> sessions_pb.LogoutResponse:
        count = await service_sessions.logout(self._core, all_sessions=request.all_sessions)
        return sessions_pb.LogoutResponse(revoked_session_count=count)

    async def StepUp(self, request: sessions_pb.StepUpRequest, context: Context) -> sessions_pb.StepUpResponse:
        if request.HasField("passkey"):
            token = await service_passkeys.step_up_with_passkey(
                self._core,
                ceremony_id=request.passkey.passkey_challenge_id,
                credential_json=request.passkey.credential_json,
                source=self._source(context),
            )
        else:
            token = await service_sessions.step_up(
                self._core, totp_code=request.totp_code, source=self._source(context)
            )
        return sessions_pb.StepUpResponse(step_up=wire.step_up_token(token))

    async def GetCurrentPrincipal(
        self, request: sessions_pb.GetCurrentPrincipalRequest, context: Context
    ) -> sessions_pb.GetCurrentPrincipalResponse:
        current = await service_sessions.get_current_principal(self._core)
        return sessions_pb.GetCurrentPrincipalResponse(principal=wire.current_principal(current))

    async def ListSessions(
        self, request: sessions_pb.ListSessionsRequest, context: Context
    ) -> sessions_pb.ListSessionsResponse:
        page = await service_sessions.list_sessions(
            self._core, page_size_requested=request.page_size, page_token=request.page_token
        )
        return sessions_pb.ListSessionsResponse(
            sessions=[wire.session(s, page.current_session_id) for s in page.sessions],
            next_page_token=page.next_page_token,
        )

    async def RevokeSession(
        self, request: sessions_pb.RevokeSessionRequest, context: Context
    ) -> sessions_pb.RevokeSessionResponse:
        revoked = await service_sessions.revoke_session(
            self._core, session_id=request.session_id, request_id=request.request_id
        )
        return sessions_pb.RevokeSessionResponse(session=wire.session(revoked, None))

    # --- keys and tokens --------------------------------------------------------------------------------------

    async def GetJwks(self, request: keys_pb.GetJwksRequest, context: Context) -> keys_pb.GetJwksResponse:
        keys = await service_keys.get_jwks(self._core)
        return keys_pb.GetJwksResponse(keys=[wire.jwk(key) for key in keys])

    async def RotateSigningKeys(
        self, request: keys_pb.RotateSigningKeysRequest, context: Context
    ) -> keys_pb.RotateSigningKeysResponse:
        new, previous = await service_keys.rotate_signing_keys(self._core, request_id=request.request_id)
        now_s = self._core.clock()
        return keys_pb.RotateSigningKeysResponse(
            active_key=wire.signing_key(new, now_s), previous_key=wire.signing_key(previous, now_s)
        )

    async def ListSigningKeys(
        self, request: keys_pb.ListSigningKeysRequest, context: Context
    ) -> keys_pb.ListSigningKeysResponse:
        page = await service_keys.list_signing_keys(
            self._core, page_size_requested=request.page_size, page_token=request.page_token
        )
        now_s = self._core.clock()
        return keys_pb.ListSigningKeysResponse(
            signing_keys=[wire.signing_key(key, now_s) for key in page.keys], next_page_token=page.next_page_token
        )

    async def IntrospectToken(
        self, request: keys_pb.IntrospectTokenRequest, context: Context
    ) -> keys_pb.IntrospectTokenResponse:
        claims = await service_keys.introspect_token(self._core, self._verifier, token=request.token)
        if claims is None:
            return keys_pb.IntrospectTokenResponse(active=False)
        return keys_pb.IntrospectTokenResponse(active=True, claims=wire.token_claims(claims, self._core.audience))

    async def IssueServiceToken(
        self, request: keys_pb.IssueServiceTokenRequest, context: Context
    ) -> keys_pb.IssueServiceTokenResponse:
        token, scopes = await service_accounts.issue_service_token(
            self._core,
            client_id=request.client_id,
            client_secret=request.client_secret,
            scopes=list(request.scopes),
            organization_id=request.organization_id,
        )
        return keys_pb.IssueServiceTokenResponse(
            access_token=token.token,
            expires_at=wire.timestamp(token.expires_at),
            scopes=list(scopes),
            token_type=TOKEN_TYPE,
        )

    # --- credentials ------------------------------------------------------------------------------------------

    async def ChangePassword(
        self, request: credentials_pb.ChangePasswordRequest, context: Context
    ) -> credentials_pb.ChangePasswordResponse:
        revoked = await service_credentials.change_password(
            self._core,
            current_password=request.current_password,
            new_password=request.new_password,
            request_id=request.request_id,
            source=self._source(context),
        )
        return credentials_pb.ChangePasswordResponse(revoked_session_count=revoked)

    async def EnrollTotp(
        self, request: credentials_pb.EnrollTotpRequest, context: Context
    ) -> credentials_pb.EnrollTotpResponse:
        enrolment = await service_credentials.enroll_totp(self._core)
        return credentials_pb.EnrollTotpResponse(
            provisioning_uri=enrolment.provisioning_uri,
            secret_base32=enrolment.secret_base32,
            expires_at=wire.timestamp(enrolment.expires_at),
        )

    async def ConfirmTotp(
        self, request: credentials_pb.ConfirmTotpRequest, context: Context
    ) -> credentials_pb.ConfirmTotpResponse:
        codes = await service_credentials.confirm_totp(self._core, totp_code=request.totp_code)
        return credentials_pb.ConfirmTotpResponse(recovery_codes=codes)

    async def RemoveTotp(
        self, request: credentials_pb.RemoveTotpRequest, context: Context
    ) -> credentials_pb.RemoveTotpResponse:
        removed_at = await service_credentials.remove_totp(self._core, request_id=request.request_id)
        return credentials_pb.RemoveTotpResponse(removed_at=wire.timestamp(removed_at))

    async def RegenerateRecoveryCodes(
        self, request: credentials_pb.RegenerateRecoveryCodesRequest, context: Context
    ) -> credentials_pb.RegenerateRecoveryCodesResponse:
        codes = await service_credentials.regenerate_recovery_codes(self._core)
        return credentials_pb.RegenerateRecoveryCodesResponse(recovery_codes=codes)

    # --- audit ------------------------------------------------------------------------------------------------

    async def ListAuditEvents(
        self, request: audit_pb.ListAuditEventsRequest, context: Context
    ) -> audit_pb.ListAuditEventsResponse:
        page = await service_audit.list_audit_events(
            self._core,
            page_size_requested=request.page_size,
            page_token=request.page_token,
            principal_id=request.principal_id,
            event_type=wire.event_type_name(request.event_type),
            start_s=wire.seconds_of(request.start_time) if request.HasField("start_time") else None,
            end_s=wire.seconds_of(request.end_time) if request.HasField("end_time") else None,
            export_id=request.export_id,
        )
        return audit_pb.ListAuditEventsResponse(
            audit_events=[wire.audit_event(event) for event in page.events], next_page_token=page.next_page_token
        )
