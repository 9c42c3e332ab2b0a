"""The ledger's client of the contacts vault for card secrets (StoreCardSecret, RevealCardSecret,
DeleteCardSecret), called with the ledger's platform service token for the tenant. The card number and CVV pass
through here only on a reveal, on their way to the caller: never logged, never stored, never put in an error."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from services.kit.channels import ServiceChannel
from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.ledger import limits
from services.ledger.errors import CardNotFound, CardVaultUnavailable
from wallet.contacts.v1 import contacts_card_secrets_pb2 as pb
from wallet.contacts.v1 import contacts_service_pb2_grpc

CARD_SECRET_SCOPES = ("contacts.card_secrets.write", "contacts.card_secrets.reveal")


@dataclass(frozen=True, slots=True)
class VaultCard:
    last_four: str
    expiry_month: int
    expiry_year: int


@dataclass(frozen=True, slots=True)
class RevealedCard:
    # repr=False: a stray log line or assertion message must not print them.
    card_number: str = field(repr=False)
    cvv: str = field(repr=False)
    expiry_month: int
    expiry_year: int


class CardVault(Protocol):
    async def store_generated(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, customer_id: uuid.UUID
    ) -> VaultCard: ...
    async def reveal(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, on_behalf_of_principal_id: str
    ) -> RevealedCard: ...
    async def delete(self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, request_id: uuid.UUID) -> None: ...


class NoCardVault:
    """The vault is not configured (no ``CONTACTS_ADDR`` or platform client): card verbs that need it are
    UNAVAILABLE; payments with existing cards still work."""

    async def store_generated(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, customer_id: uuid.UUID
    ) -> VaultCard:
        raise CardVaultUnavailable("not configured")

    async def reveal(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, on_behalf_of_principal_id: str
    ) -> RevealedCard:
        raise CardVaultUnavailable("not configured")

    async def delete(self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, request_id: uuid.UUID) -> None:
        raise CardVaultUnavailable("not configured")


class GrpcCardVault:
    def __init__(self, contacts_addr: str, tokens: ServiceTokenSource) -> None:
        self._contacts = ServiceChannel(contacts_addr)
        self._tokens = tokens

    def _stub(self) -> contacts_service_pb2_grpc.ContactsServiceAsyncStub:
        return contacts_service_pb2_grpc.ContactsServiceStub(self._contacts.get())

    async def _metadata(self, organization_id: uuid.UUID) -> tuple[tuple[str, str], ...]:
        try:
            token = await self._tokens.token_for(str(organization_id))
        except ServiceTokenUnavailable as err:
            raise CardVaultUnavailable("no service token") from err
        return (("authorization", f"Bearer {token}"),)

    async def store_generated(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, customer_id: uuid.UUID
    ) -> VaultCard:
        request = pb.StoreCardSecretRequest(
            card_secret_id=str(card_secret_id), customer_id=str(customer_id), generate=pb.GeneratedCardSecret()
        )
        try:
            response = await self._stub().StoreCardSecret(
                request, metadata=await self._metadata(organization_id), timeout=limits.CARD_VAULT_DEADLINE_S
            )
        except grpc.aio.AioRpcError as err:
            raise _vault_error(err) from None
        secret = response.card_secret
        return VaultCard(secret.last_four, secret.expiry_month, secret.expiry_year)

    async def reveal(
        self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, on_behalf_of_principal_id: str
    ) -> RevealedCard:
        request = pb.RevealCardSecretRequest(
            card_secret_id=str(card_secret_id), on_behalf_of_principal_id=on_behalf_of_principal_id
        )
        try:
            response = await self._stub().RevealCardSecret(
                request, metadata=await self._metadata(organization_id), timeout=limits.CARD_VAULT_DEADLINE_S
            )
        except grpc.aio.AioRpcError as err:
            raise _vault_error(err) from None
        return RevealedCard(response.card_number, response.cvv, response.expiry_month, response.expiry_year)

    async def delete(self, organization_id: uuid.UUID, card_secret_id: uuid.UUID, request_id: uuid.UUID) -> None:
        request = pb.DeleteCardSecretRequest(card_secret_id=str(card_secret_id), request_id=str(request_id))
        try:
            await self._stub().DeleteCardSecret(
                request, metadata=await self._metadata(organization_id), timeout=limits.CARD_VAULT_DEADLINE_S
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return  # already gone: deleting is idempotent
            raise _vault_error(err) from None

    async def close(self) -> None:
        await self._contacts.close()


def _vault_error(err: grpc.aio.AioRpcError) -> Exception:
    # Only the status code crosses: the vault's message could name the secret.
    if err.code() == grpc.StatusCode.NOT_FOUND:
        return CardNotFound()
    return CardVaultUnavailable(err.code().name)
