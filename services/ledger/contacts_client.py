"""The ledger's calls into the contacts vault: ``ResolvePhone`` for PayByPhone.

The use case depends on the ``PayeeDirectory`` protocol declared in ``service_pay_by_phone.py``; this is its gRPC
implementation. Calls carry a platform service-account token for the payer's tenant (scope
``contacts.directory.read``, a platform-only permission) and name the payer as ``on_behalf_of_principal_id``, so the
vault's rate limits and access log count the payer, not just the ledger. The phone number goes into the request and
nowhere else: it is never logged, and the vault's errors never echo it.
"""

from __future__ import annotations

import uuid

import grpc

from services.kit.channels import ServiceChannel
from services.kit.errors import FieldViolation, InvalidArgument, ResourceExhausted, Unavailable
from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.kit.status import ErrorDetails
from services.ledger.service_pay_by_phone import Payee
from wallet.contacts.v1 import contacts_directory_pb2, contacts_service_pb2_grpc

DIRECTORY_SCOPE = "contacts.directory.read"
RESOLVE_DEADLINE_S_DEFAULT = 2.0
# The vault's request fields that are also PayByPhone's: their violations are passed on under the same names.
PASSED_ON_FIELDS = frozenset({"phone_number", "region_hint"})


class PhoneNumberRejected(InvalidArgument):
    reason = "PHONE_NUMBER_INVALID"


class PayeeLookupRateLimited(ResourceExhausted):
    reason = "RATE_LIMITED"


class ContactsUnavailable(Unavailable):
    pass


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class GrpcPayeeDirectory:
    def __init__(
        self, contacts_addr: str, tokens: ServiceTokenSource, *, deadline_s: float = RESOLVE_DEADLINE_S_DEFAULT
    ) -> None:
        self._contacts = ServiceChannel(contacts_addr)
        self._tokens = tokens
        self._deadline_s = deadline_s

    def _stub(self) -> contacts_service_pb2_grpc.ContactsServiceAsyncStub:
        return contacts_service_pb2_grpc.ContactsServiceStub(self._contacts.get())

    async def resolve(
        self, organization_id: uuid.UUID, phone_number: str, region_hint: str, on_behalf_of: str
    ) -> Payee | None:
        """The payee, or None for every kind of miss (the vault answers them all alike)."""
        try:
            token = await self._tokens.token_for(str(organization_id))
        except ServiceTokenUnavailable as err:
            raise ContactsUnavailable("no service token for the contacts vault") from err
        request = contacts_directory_pb2.ResolvePhoneRequest(
            phone_number=phone_number, region_hint=region_hint, on_behalf_of_principal_id=on_behalf_of
        )
        try:
            response = await self._stub().ResolvePhone(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=self._deadline_s
            )
        except grpc.aio.AioRpcError as err:
            return self._miss_or_raise(err)
        default_account = _uuid_or_none(response.default_account_id)
        accounts = tuple(a for a in (_uuid_or_none(text) for text in response.account_ids) if a is not None)
        customer = _uuid_or_none(response.customer_id)
        if customer is None:
            raise ContactsUnavailable("the contacts vault answered without a customer")
        return Payee(customer, default_account, accounts, response.masked_phone_number)

    @staticmethod
    def _miss_or_raise(err: grpc.aio.AioRpcError) -> None:
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND:
            return None
        details = ErrorDetails.from_rpc_error(err)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            violations = [v for v in details.field_violations if v.field in PASSED_ON_FIELDS]
            raise PhoneNumberRejected(
                "phone_number: not a valid phone number",
                field_violations=violations or [FieldViolation("phone_number", "is not a valid phone number")],
            )
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise PayeeLookupRateLimited(
                "too many phone lookups; retry later", retry_after_s=details.retry_after_s or 60.0
            )
        raise ContactsUnavailable(f"the contacts vault answered {code.name}") from err

    async def close(self) -> None:
        await self._contacts.close()
