"""Risk's calls into the ledger: ``ResolveTransferReview`` when an approver resolves a case.

The service depends on the ``LedgerReviews`` protocol declared in ``service_cases.py`` (and expects
``LedgerUnavailable`` from it); this is its gRPC implementation. Calls carry a platform service-account token for the case's tenant (scope
``ledger.reviews.approve``) from the kit's ``ClientCredentialsTokens`` (services/kit/service_tokens.py).
"""

from __future__ import annotations

import asyncio

import grpc

from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.kit.telemetry import client_interceptors
from services.risk import limits
from services.risk.service_cases import LedgerUnavailable
from wallet.ledger.v1 import ledger_approvals_pb2, ledger_service_pb2_grpc

LEDGER_REVIEW_SCOPE = "ledger.reviews.approve"
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class GrpcLedgerReviews:
    def __init__(self, ledger_addr: str, tokens: ServiceTokenSource) -> None:
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
            except ServiceTokenUnavailable as err:
                raise LedgerUnavailable(f"no service token for the ledger call: {err}") from err
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
