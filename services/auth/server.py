"""gRPC servicer for wallet.auth.v1.AuthService: proto ⇄ domain types, one use-case call per handler.

RPCs not built yet (devices and passkeys, issue 13) are inherited from the generated base class, which raises
NotImplementedError; the kit's interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.auth import (
    service_accounts,
    service_audit,
    service_credentials,
    service_keys,
    service_login,
    service_organizations,
    service_principal_status,
    service_principals,
    service_sessions,
    wire,
)
from services.auth.core import TOKEN_TYPE, AuthCore
from services.auth.domain import Status
from services.auth.domain_records import Source
from services.auth.proto_enums import role_from_proto, status_from_proto
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER, TokenVerifier
from wallet.auth.v1 import (
    auth_audit_pb2 as audit_pb,
)
from wallet.auth.v1 import (
    auth_credentials_pb2 as credentials_pb,
)
from wallet.auth.v1 import (
    auth_customers_pb2 as customers_pb,
)
from wallet.auth.v1 import (
    auth_keys_pb2 as keys_pb,
)
from wallet.auth.v1 import (
    auth_members_pb2 as members_pb,
)
from wallet.auth.v1 import (
    auth_organizations_pb2 as organizations_pb,
)
from wallet.auth.v1 import (
    auth_service_accounts_pb2 as accounts_pb,
)
from wallet.auth.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
)
from wallet.auth.v1 import (
    auth_sessions_pb2 as sessions_pb,
)

if TYPE_CHECKING:
    Context = Any

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
_OUTCOMES = {
    service_login.LoginOutcome.AUTHENTICATED: sessions_pb.LOGIN_OUTCOME_AUTHENTICATED,
    service_login.LoginOutcome.MFA_REQUIRED: sessions_pb.LOGIN_OUTCOME_MFA_REQUIRED,
    service_login.LoginOutcome.MFA_ENROLMENT_REQUIRED: sessions_pb.LOGIN_OUTCOME_MFA_ENROLMENT_REQUIRED,
}


class AuthServer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, core: AuthCore, verifier: TokenVerifier) -> None:
        self._core = core
        self._verifier = verifier

    def _source(self, context: Context, device_id: str = "") -> Source:
        metadata = {
            key.lower(): value for key, value in context.invocation_metadata() or () if isinstance(value, str)
        }
        return wire.source_of(metadata, context.peer(), self._core.settings.trusted_client_ip_header, device_id)

    # --- organizations ----------------------------------------------------------------------------------------

    async def SignUpOrganization(
        self, request: organizations_pb.SignUpOrganizationRequest, context: Context
    ) -> organizations_pb.SignUpOrganizationResponse:
        result = await service_organizations.sign_up_organization(
            self._core,
            organization_id=request.organization_id,
            slug=request.slug,
            display_name=request.display_name,
            owner_email=request.owner_email,
            owner_display_name=request.owner_display_name,
            owner_password=request.owner_password,
            source=self._source(context),
        )
        return organizations_pb.SignUpOrganizationResponse(
            organization=wire.organization(result.organization),
            owner_member_id=result.owner_member_id,
            tokens=wire.token_pair(result.tokens) if result.tokens else None,
        )

    async def GetOrganization(
        self, request: organizations_pb.GetOrganizationRequest, context: Context
    ) -> organizations_pb.GetOrganizationResponse:
        organization = await service_organizations.get_organization(self._core)
        return organizations_pb.GetOrganizationResponse(organization=wire.organization(organization))

    async def GetOrganizationPolicy(
        self, request: organizations_pb.GetOrganizationPolicyRequest, context: Context
    ) -> organizations_pb.GetOrganizationPolicyResponse:
        policy = await service_organizations.get_organization_policy(self._core)
        return organizations_pb.GetOrganizationPolicyResponse(policy=wire.policy(policy))

    async def UpdateOrganizationPolicy(
        self, request: organizations_pb.UpdateOrganizationPolicyRequest, context: Context
    ) -> organizations_pb.UpdateOrganizationPolicyResponse:
        policy = await service_organizations.update_organization_policy(
            self._core,
            wanted=wire.policy_from(request.policy),
            mask=list(request.update_mask.paths),
            request_id=request.request_id,
        )
        return organizations_pb.UpdateOrganizationPolicyResponse(policy=wire.policy(policy))

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
        token = await service_sessions.step_up(
            self._core,
            totp_code=request.totp_code,
            has_passkey=request.HasField("passkey"),
            source=self._source(context),
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

    # --- members ----------------------------------------------------------------------------------------------

    async def InviteMember(
        self, request: members_pb.InviteMemberRequest, context: Context
    ) -> members_pb.InviteMemberResponse:
        view, invitation = await service_principals.invite_member(
            self._core,
            member_id=request.member_id,
            email=request.email,
            display_name=request.display_name,
            roles=[role_from_proto(role) for role in request.roles],
        )
        return members_pb.InviteMemberResponse(member=wire.member(view), invitation=wire.invitation(invitation))

    async def AcceptInvitation(
        self, request: members_pb.AcceptInvitationRequest, context: Context
    ) -> members_pb.AcceptInvitationResponse:
        principal = await service_principals.accept_invitation(
            self._core, invitation_token=request.invitation_token, password=request.password
        )
        return members_pb.AcceptInvitationResponse(
            principal_id=principal.principal_id, principal_kind=wire.kind_to_proto(principal.kind)
        )

    async def GetMember(self, request: members_pb.GetMemberRequest, context: Context) -> members_pb.GetMemberResponse:
        view = await service_principals.get_principal(
            self._core, principal_id=request.member_id, kind=PRINCIPAL_KIND_MEMBER
        )
        return members_pb.GetMemberResponse(member=wire.member(view))

    async def ListMembers(
        self, request: members_pb.ListMembersRequest, context: Context
    ) -> members_pb.ListMembersResponse:
        page = await service_principals.list_principals(
            self._core,
            kind=PRINCIPAL_KIND_MEMBER,
            page_size_requested=request.page_size,
            page_token=request.page_token,
            status=status_from_proto(request.status),
            role=role_from_proto(request.role) or None,
            email=None,
            external_reference=None,
        )
        return members_pb.ListMembersResponse(
            members=[wire.member(view) for view in page.principals], next_page_token=page.next_page_token
        )

    async def UpdateMemberRoles(
        self, request: members_pb.UpdateMemberRolesRequest, context: Context
    ) -> members_pb.UpdateMemberRolesResponse:
        view = await service_principals.update_member_roles(
            self._core,
            member_id=request.member_id,
            roles=[role_from_proto(role) for role in request.roles],
            request_id=request.request_id,
        )
        return members_pb.UpdateMemberRolesResponse(member=wire.member(view))

    async def DisableMember(
        self, request: members_pb.DisableMemberRequest, context: Context
    ) -> members_pb.DisableMemberResponse:
        view = await service_principal_status.set_principal_status(
            self._core,
            principal_id=request.member_id,
            kind=PRINCIPAL_KIND_MEMBER,
            status=Status.DISABLED,
            request_id=request.request_id,
        )
        return members_pb.DisableMemberResponse(member=wire.member(view))

    async def EnableMember(
        self, request: members_pb.EnableMemberRequest, context: Context
    ) -> members_pb.EnableMemberResponse:
        view = await service_principal_status.set_principal_status(
            self._core,
            principal_id=request.member_id,
            kind=PRINCIPAL_KIND_MEMBER,
            status=Status.ACTIVE,
            request_id=request.request_id,
        )
        return members_pb.EnableMemberResponse(member=wire.member(view))

    async def UnlockMember(
        self, request: members_pb.UnlockMemberRequest, context: Context
    ) -> members_pb.UnlockMemberResponse:
        view = await service_principal_status.unlock_principal(
            self._core, principal_id=request.member_id, kind=PRINCIPAL_KIND_MEMBER, request_id=request.request_id
        )
        return members_pb.UnlockMemberResponse(member=wire.member(view))

    # --- customers --------------------------------------------------------------------------------------------

    async def CreateCustomer(
        self, request: customers_pb.CreateCustomerRequest, context: Context
    ) -> customers_pb.CreateCustomerResponse:
        view, invitation = await service_principals.create_customer(
            self._core,
            customer_id=request.customer_id,
            email=request.email,
            display_name=request.display_name,
            external_reference=request.external_reference,
        )
        return customers_pb.CreateCustomerResponse(
            customer=wire.customer(view), invitation=wire.invitation(invitation)
        )

    async def SignUpCustomer(
        self, request: customers_pb.SignUpCustomerRequest, context: Context
    ) -> customers_pb.SignUpCustomerResponse:
        result = await service_principals.sign_up_customer(
            self._core,
            customer_id=request.customer_id,
            organization_slug=request.organization_slug,
            email=request.email,
            display_name=request.display_name,
            password=request.password,
            source=self._source(context, request.device_id),
        )
        return customers_pb.SignUpCustomerResponse(
            customer=wire.customer(result.customer),
            tokens=wire.token_pair(result.tokens) if result.tokens else None,
        )

    async def GetCustomer(
        self, request: customers_pb.GetCustomerRequest, context: Context
    ) -> customers_pb.GetCustomerResponse:
        view = await service_principals.get_principal(
            self._core, principal_id=request.customer_id, kind=PRINCIPAL_KIND_CUSTOMER
        )
        return customers_pb.GetCustomerResponse(customer=wire.customer(view))

    async def ListCustomers(
        self, request: customers_pb.ListCustomersRequest, context: Context
    ) -> customers_pb.ListCustomersResponse:
        page = await service_principals.list_principals(
            self._core,
            kind=PRINCIPAL_KIND_CUSTOMER,
            page_size_requested=request.page_size,
            page_token=request.page_token,
            status=status_from_proto(request.status),
            role=None,
            email=request.email or None,
            external_reference=request.external_reference or None,
        )
        return customers_pb.ListCustomersResponse(
            customers=[wire.customer(view) for view in page.principals], next_page_token=page.next_page_token
        )

    async def DisableCustomer(
        self, request: customers_pb.DisableCustomerRequest, context: Context
    ) -> customers_pb.DisableCustomerResponse:
        view = await service_principal_status.set_principal_status(
            self._core,
            principal_id=request.customer_id,
            kind=PRINCIPAL_KIND_CUSTOMER,
            status=Status.DISABLED,
            request_id=request.request_id,
        )
        return customers_pb.DisableCustomerResponse(customer=wire.customer(view))

    async def EnableCustomer(
        self, request: customers_pb.EnableCustomerRequest, context: Context
    ) -> customers_pb.EnableCustomerResponse:
        view = await service_principal_status.set_principal_status(
            self._core,
            principal_id=request.customer_id,
            kind=PRINCIPAL_KIND_CUSTOMER,
            status=Status.ACTIVE,
            request_id=request.request_id,
        )
        return customers_pb.EnableCustomerResponse(customer=wire.customer(view))

    async def UnlockCustomer(
        self, request: customers_pb.UnlockCustomerRequest, context: Context
    ) -> customers_pb.UnlockCustomerResponse:
        view = await service_principal_status.unlock_principal(
            self._core, principal_id=request.customer_id, kind=PRINCIPAL_KIND_CUSTOMER, request_id=request.request_id
        )
        return customers_pb.UnlockCustomerResponse(customer=wire.customer(view))

    # --- service accounts -------------------------------------------------------------------------------------

    async def CreateServiceAccount(
        self, request: accounts_pb.CreateServiceAccountRequest, context: Context
    ) -> accounts_pb.CreateServiceAccountResponse:
        created = await service_accounts.create_service_account(
            self._core,
            service_account_id=request.service_account_id,
            display_name=request.display_name,
            scopes=list(request.scopes),
        )
        return accounts_pb.CreateServiceAccountResponse(
            service_account=wire.service_account(created.service_account), client_secret=created.client_secret
        )

    async def ListServiceAccounts(
        self, request: accounts_pb.ListServiceAccountsRequest, context: Context
    ) -> accounts_pb.ListServiceAccountsResponse:
        page = await service_accounts.list_service_accounts(
            self._core,
            page_size_requested=request.page_size,
            page_token=request.page_token,
            status=status_from_proto(request.status),
        )
        return accounts_pb.ListServiceAccountsResponse(
            service_accounts=[wire.service_account(p) for p in page.service_accounts],
            next_page_token=page.next_page_token,
        )

    async def RotateServiceAccountSecret(
        self, request: accounts_pb.RotateServiceAccountSecretRequest, context: Context
    ) -> accounts_pb.RotateServiceAccountSecretResponse:
        rotated = await service_accounts.rotate_service_account_secret(
            self._core, service_account_id=request.service_account_id, request_id=request.request_id
        )
        return accounts_pb.RotateServiceAccountSecretResponse(
            service_account=wire.service_account(rotated.service_account),
            client_secret=rotated.client_secret,
            previous_secret_expires_at=wire.timestamp(rotated.previous_secret_expires_at),
        )

    async def DisableServiceAccount(
        self, request: accounts_pb.DisableServiceAccountRequest, context: Context
    ) -> accounts_pb.DisableServiceAccountResponse:
        account = await service_accounts.disable_service_account(
            self._core, service_account_id=request.service_account_id, request_id=request.request_id
        )
        return accounts_pb.DisableServiceAccountResponse(service_account=wire.service_account(account))

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
        )
        return audit_pb.ListAuditEventsResponse(
            audit_events=[wire.audit_event(event) for event in page.events], next_page_token=page.next_page_token
        )
