"""Risk's calls into the ledger: ``ResolveTransferReview`` when an approver resolves a case.

The service depends on the ``LedgerReviews`` protocol declared in ``service_cases.py`` (and expects
``LedgerUnavailable`` from it); this is its gRPC implementation. Calls carry a platform service-account token for the case's tenant (scope
``ledger.reviews.approve``), obtained from auth's client-credentials grant and cached until shortly before expiry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import grpc

from services.kit.telemetry import client_interceptors
from services.risk import limits
from services.risk.service_cases import LedgerUnavailable
from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc
from wallet.ledger.v1 import ledger_approvals_pb2, ledger_service_pb2_grpc

LEDGER_REVIEW_SCOPE = "ledger.reviews.approve"
TOKEN_REFRESH_MARGIN_S = 30.0
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class TokenSource(Protocol):
    async def token_for(self, organization_id: str) -> str: ...


@dataclass(slots=True)
class _CachedToken:
    token: str
    expires_at_s: float


class ClientCredentialsTokenSource:
    """Tokens from auth's ``IssueServiceToken`` for risk's platform service account, per tenant."""

    def __init__(self, auth_addr: str, client_id: str, client_secret: str) -> None:
        self._auth_addr = auth_addr
        self._client_id = client_id
        self._client_secret = client_secret
        self._cache: dict[str, _CachedToken] = {}

    async def token_for(self, organization_id: str) -> str:
        if not self._client_id or not self._client_secret:
            raise LedgerUnavailable("RISK_CLIENT_ID and RISK_CLIENT_SECRET are not configured")
        cached = self._cache.get(organization_id)
        if cached is not None and cached.expires_at_s - TOKEN_REFRESH_MARGIN_S > time.time():
            return cached.token
        async with grpc.aio.insecure_channel(self._auth_addr, interceptors=client_interceptors()) as channel:
            response = await auth_service_pb2_grpc.AuthServiceStub(channel).IssueServiceToken(
                auth_keys_pb2.IssueServiceTokenRequest(
                    client_id=self._client_id,
                    client_secret=self._client_secret,
                    scopes=[LEDGER_REVIEW_SCOPE],
                    organization_id=organization_id,
                ),
                timeout=limits.LEDGER_CALL_DEADLINE_S,
            )
        self._cache[organization_id] = _CachedToken(response.access_token, response.expires_at.ToSeconds())
        return response.access_token


class GrpcLedgerReviews:
    def __init__(self, ledger_addr: str, tokens: TokenSource) -> None:
        self._ledger_addr = ledger_addr
        self._tokens = tokens
        self._channel: grpc.aio.Channel | None = None

    def _open_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._ledger_addr, interceptors=client_interceptors())
        return self._channel

    async def resolve_transfer_review(
        self,
        *,
        organization_id: str,
        transfer_id: str,
        case_id: str,
        approve: bool,
        resolved_by_principal_id: str,
    ) -> None:
        outcome = (
            ledger_approvals_pb2.REVIEW_OUTCOME_APPROVE if approve else ledger_approvals_pb2.REVIEW_OUTCOME_REJECT
        )
        request = ledger_approvals_pb2.ResolveTransferReviewRequest(
            transfer_id=transfer_id,
            case_id=case_id,
            outcome=outcome,
            resolved_by_principal_id=resolved_by_principal_id,
            request_id=case_id,  # one resolution per case: the case id is the idempotency key
        )
        delay_s = 0.1
        for attempt in range(1, limits.LEDGER_CALL_ATTEMPTS_MAX + 1):
            try:
                token = await self._tokens.token_for(organization_id)
            except grpc.aio.AioRpcError as err:
                raise LedgerUnavailable(f"auth did not issue risk's service token: {err.code().name}") from err
            try:
                stub = ledger_service_pb2_grpc.LedgerServiceStub(self._open_channel())
                await stub.ResolveTransferReview(
                    request,
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=limits.LEDGER_CALL_DEADLINE_S,
                )
                return
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE_CODES or attempt == limits.LEDGER_CALL_ATTEMPTS_MAX:
                    raise LedgerUnavailable(f"ledger answered {err.code().name}") from err
            await asyncio.sleep(delay_s)
            delay_s *= 2

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
