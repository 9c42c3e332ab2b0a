"""gRPC handlers of organizations, members, customers and service accounts (wire only; see server.py)."""

from __future__ import annotations

from services.auth import (
    service_accounts,
    service_organizations,
    service_principal_status,
    service_principals,
    wire,
)
from services.auth.domain import Status
from services.auth.proto_enums import role_from_proto, status_from_proto
from services.auth.server_base import Context, HandlerBase
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_MEMBER
from wallet.auth.v1 import (
    auth_customers_pb2 as customers_pb,
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


class IdentityHandlers(HandlerBase):
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
