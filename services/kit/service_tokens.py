"""Per-tenant access tokens for a platform service account, obtained from auth and cached until shortly before expiry.

The suite's own services call each other with platform-only permissions (the ledger assesses with risk, risk
resolves reviews in the ledger, contacts and the gateway resolve directory entries). Each has a platform service
account (``python -m services.auth bootstrap-platform-client --name <svc> --scope ...``) and asks auth's
``IssueServiceToken`` for a token that acts for one tenant. This module keeps one token per tenant in memory and
re-issues it ``TOKEN_REFRESH_MARGIN_S`` before it expires; concurrent callers for the same tenant share one request
(a hot path must not stampede auth when a token runs out). The client secret and the tokens never leave this object:
nothing here logs them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from services.kit.channels import ServiceChannel
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc

TOKEN_REFRESH_MARGIN_S = 30.0
ISSUE_DEADLINE_S_DEFAULT = 2.0
# Bounded memory: one entry per tenant the process acts for; the oldest is dropped beyond this.
CACHED_TENANTS_MAX = 10_000


class ServiceTokenUnavailable(Exception):
    """No token could be obtained: the client is not configured, or auth refused or did not answer in time."""


class ServiceTokenSource(Protocol):
    async def token_for(self, organization_id: str) -> str:
        """A bearer token acting for ``organization_id``; raises ``ServiceTokenUnavailable``."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceClient:
    """A platform service account's credentials and the scopes its tokens should carry."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...]

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


@dataclass(frozen=True, slots=True)
class _CachedToken:
    token: str
    expires_at_s: float


class ClientCredentialsTokens:
    """``ServiceTokenSource`` backed by auth's ``IssueServiceToken``, one cached token per tenant."""

    def __init__(
        self,
        auth_addr: str,
        client: ServiceClient,
        *,
        issue_deadline_s: float = ISSUE_DEADLINE_S_DEFAULT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = ServiceChannel(auth_addr)
        self._client = client
        self._issue_deadline_s = issue_deadline_s
        self._clock = clock
        self._cache: dict[str, _CachedToken] = {}
        self._in_flight: dict[str, asyncio.Future[_CachedToken]] = {}

    def cached(self, organization_id: str) -> str | None:
        """The cached token when it is still good: lets a hot path skip an await."""
        entry = self._cache.get(organization_id)
        if entry is not None and entry.expires_at_s - TOKEN_REFRESH_MARGIN_S > self._clock():
            return entry.token
        return None

    async def token_for(self, organization_id: str) -> str:
        token = self.cached(organization_id)
        if token is not None:
            return token
        if not self._client.configured:
            raise ServiceTokenUnavailable("the service's platform client id and secret are not configured")
        pending = self._in_flight.get(organization_id)
        if pending is None:
            pending = asyncio.ensure_future(self._issue(organization_id))
            self._in_flight[organization_id] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(organization_id, None))
        # shield: one caller's cancellation (its own deadline) must not cancel the shared request.
        entry = await asyncio.shield(pending)
        return entry.token

    async def _issue(self, organization_id: str) -> _CachedToken:
        request = auth_keys_pb2.IssueServiceTokenRequest(
            client_id=self._client.client_id,
            client_secret=self._client.client_secret,
            scopes=list(self._client.scopes),
            organization_id=organization_id,
        )
        try:
            response = await auth_service_pb2_grpc.AuthServiceStub(self._auth.get()).IssueServiceToken(
                request, timeout=self._issue_deadline_s
            )
        except grpc.aio.AioRpcError as err:
            raise ServiceTokenUnavailable(f"auth did not issue a service token: {err.code().name}") from err
        entry = _CachedToken(response.access_token, float(response.expires_at.ToSeconds()))
        if len(self._cache) >= CACHED_TENANTS_MAX and organization_id not in self._cache:
            del self._cache[next(iter(self._cache))]
        self._cache[organization_id] = entry
        return entry

    async def close(self) -> None:
        await self._auth.close()


def service_client(client_id: str | None, client_secret: str | None, scopes: Sequence[str]) -> ServiceClient:
    return ServiceClient(client_id or "", client_secret or "", tuple(scopes))
