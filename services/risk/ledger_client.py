"""Risk's calls into the ledger: ``ResolveTransferReview`` when an approver resolves a case; for complaints,
``GetTransfer``/``GetAccount`` (is the disputed transfer the customer's?) and ``ReverseTransfer`` (the refund of an
upheld complaint).

The service depends on the ``LedgerReviews`` protocol declared in ``service_cases.py`` (and expects
``LedgerUnavailable`` from it); this is its gRPC implementation. Calls carry a platform service-account token for the case's tenant (scope
``ledger.reviews.approve``) from the kit's ``ClientCredentialsTokens`` (services/kit/service_tokens.py).
"""

from __future__ import annotations

import asyncio

import grpc

from services.kit.channels import ServiceChannel
from services.kit.errors import Unavailable
from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.kit.status import ErrorDetails
from services.risk import limits
from services.risk.service_cases import LedgerUnavailable
from services.risk.service_complaints import (
    DisputedTransfer,
    RefundCurrencyMismatch,
    RefundExceedsTransfer,
    RefundInsufficientFunds,
    RefundRefused,
)
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_approvals_pb2, ledger_service_pb2_grpc, ledger_transfers_pb2

LEDGER_REVIEW_SCOPE = "ledger.reviews.approve"
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class GrpcLedgerReviews:
    def __init__(self, ledger_addr: str, tokens: ServiceTokenSource) -> None:
        self._ledger = ServiceChannel(ledger_addr)
        self._tokens = tokens

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
                stub = ledger_service_pb2_grpc.LedgerServiceStub(self._ledger.get())
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
        await self._ledger.close()


# --- complaints: the disputed transfer and the refund ---

TRANSFERS_READ_SCOPE = "ledger.transfers.read"
ACCOUNTS_READ_SCOPE = "ledger.accounts.read"
REVERSALS_WRITE_SCOPE = "ledger.reversals.write"
COMPLAINT_SCOPES = (TRANSFERS_READ_SCOPE, ACCOUNTS_READ_SCOPE, REVERSALS_WRITE_SCOPE)
# The ledger's refusals of a refund that a retry cannot change, by the reason it gives.
REFUSALS_BY_REASON: dict[str, type[RefundRefused]] = {
    RefundExceedsTransfer.reason: RefundExceedsTransfer,
    RefundCurrencyMismatch.reason: RefundCurrencyMismatch,
    RefundInsufficientFunds.reason: RefundInsufficientFunds,
}
FINAL_CODES = frozenset(
    {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
)


class GrpcComplaintLedger:
    """``ComplaintLedger`` over gRPC: GetTransfer and GetAccount (whose customer the accounts belong to) and
    ReverseTransfer, with risk's platform token for the complaint's tenant (another tenant's transfer is then
    NOT_FOUND by construction)."""

    def __init__(self, ledger_addr: str, tokens: ServiceTokenSource) -> None:
        self._ledger = ServiceChannel(ledger_addr)
        self._tokens = tokens

    def _stub(self) -> ledger_service_pb2_grpc.LedgerServiceAsyncStub:
        return ledger_service_pb2_grpc.LedgerServiceStub(self._ledger.get())

    async def _metadata(self, organization_id: str) -> tuple[tuple[str, str]]:
        try:
            token = await self._tokens.token_for(organization_id)
        except ServiceTokenUnavailable as err:
            raise Unavailable("no service token for the ledger call") from err
        return (("authorization", f"Bearer {token}"),)

    async def find_transfer(self, organization_id: str, transfer_id: str) -> DisputedTransfer | None:
        metadata = await self._metadata(organization_id)
        try:
            response = await self._stub().GetTransfer(
                ledger_transfers_pb2.GetTransferRequest(transfer_id=transfer_id),
                metadata=metadata,
                timeout=limits.LEDGER_CALL_DEADLINE_S,
            )
            transfer = response.transfer
            debit_customer = await self._account_customer(transfer.debit_account_id, metadata)
            credit_customer = await self._account_customer(transfer.credit_account_id, metadata)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable(f"the ledger answered {err.code().name}") from err
        return DisputedTransfer(
            transfer_id=transfer.transfer_id,
            debit_customer_id=debit_customer,
            credit_customer_id=credit_customer,
            is_card_payment=transfer.kind == ledger_transfers_pb2.TRANSFER_KIND_CARD_PAYMENT,
            card_id=transfer.card_id,
        )

    async def _account_customer(self, account_id: str, metadata: tuple[tuple[str, str]]) -> str:
        response = await self._stub().GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id=account_id),
            metadata=metadata,
            timeout=limits.LEDGER_CALL_DEADLINE_S,
        )
        return response.account.customer_id

    async def refund(
        self,
        *,
        organization_id: str,
        reversal_id: str,
        original_transfer_id: str,
        amount_minor: int,
        currency: str,
        complaint_id: str,
    ) -> str:
        request = ledger_transfers_pb2.ReverseTransferRequest(
            transfer_id=reversal_id,
            original_transfer_id=original_transfer_id,
            amount=money_pb2.Money(currency=currency, amount_minor=amount_minor),
            reason=ledger_transfers_pb2.REVERSAL_REASON_DISPUTE_UPHELD,
            complaint_id=complaint_id,
        )
        metadata = await self._metadata(organization_id)
        try:
            response = await self._stub().ReverseTransfer(
                request, metadata=metadata, timeout=limits.LEDGER_CALL_DEADLINE_S
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in FINAL_CODES:
                details = ErrorDetails.from_rpc_error(err)
                refusal = REFUSALS_BY_REASON.get(details.reason, RefundRefused)
                raise refusal(
                    f"the ledger refused the refund: {details.message}", metadata={"ledger_reason": details.reason}
                ) from err
            raise Unavailable(f"the ledger answered {err.code().name}") from err
        return response.transfer.transfer_id

    async def close(self) -> None:
        await self._ledger.close()
