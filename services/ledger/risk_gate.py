"""The ledger's risk gate: ``risk.Assess`` before a transfer out of a customer wallet or an operating account commits.

Plugged into ``TransferService`` as its ``PreCommitGate`` (single transfers and batch items), outside any database
transaction. Per decision:

- ALLOW → commit, the decision recorded on the transfer.
- CHALLENGE → ``FAILED_PRECONDITION`` / ``STEP_UP_REQUIRED`` (with ``PreconditionFailure``) unless the caller's
  token is a fresh step-up token (``acr=mfa``, ``auth_time`` within ``STEP_UP_MAX_AGE_S``); then commit. The retry
  reuses the transfer id, so risk answers from its idempotency record (its digest covers the payment, not the token).
- REVIEW → the transfer becomes a hold in AWAITING_REVIEW linked to risk's case (risk opened it for this transfer
  id); only ``ResolveTransferReview`` (risk, when the case is resolved) posts or voids it; otherwise it expires.
- DENY → ``FAILED_PRECONDITION`` / ``RISK_DENIED`` with the app-safe reason codes in the metadata.
- Risk unavailable, late (``deadline_s``, default 50 ms) or unusable: below ``fail_open_below_minor`` the transfer
  commits with ``RISK_CHECK_FAILED_OPEN`` recorded; at or above it the call fails ``UNAVAILABLE`` with ``RetryInfo``.

Every outcome is counted in ``wallet_ledger_risk_gate_total{outcome}``. The gate needs the debit account's kind and
both accounts' owners: they never change after opening, so they are read once per account and kept in a bounded
in-process table (no database round trip per transfer).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import asyncpg
import grpc
from prometheus_client import Counter

from services.kit.channels import ServiceChannel
from services.kit.errors import IdempotencyKeyReused, StepUpRequired
from services.kit.request_context import current_principal
from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, PRINCIPAL_KIND_SERVICE, Principal
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.domain_accounts import AccountKind
from services.ledger.domain_transfers import RiskCheck, RiskDecision, RiskRecord, TransferCommand
from services.ledger.errors import RiskDenied, RiskUnavailable
from services.ledger.store_ports import AccountReader
from wallet.common.v1 import money_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

log = logging.getLogger(__name__)

ASSESS_SCOPE = "risk.assessments.assess"
GATED_ACCOUNT_KINDS = frozenset({AccountKind.CUSTOMER_WALLET, AccountKind.OPERATING})
ACCOUNT_FACTS_CACHED_MAX = 100_000
UNAVAILABLE_LOG_INTERVAL_S = 10.0
CONNECT_WAIT_S = 30.0

GATE_OUTCOMES = Counter(
    "wallet_ledger_risk_gate_total",
    "Transfers through the risk gate, by what happened: allow, challenge_passed, step_up_required, review, deny, "
    "failed_open, failed_closed, not_required.",
    ["outcome"],
)

_DECISIONS = {
    risk_assessments_pb2.DECISION_ALLOW: RiskDecision.ALLOW,
    risk_assessments_pb2.DECISION_CHALLENGE: RiskDecision.CHALLENGE,
    risk_assessments_pb2.DECISION_REVIEW: RiskDecision.REVIEW,
    risk_assessments_pb2.DECISION_DENY: RiskDecision.DENY,
}
_ACTOR_KINDS = {
    PRINCIPAL_KIND_CUSTOMER: risk_assessments_pb2.ACTOR_KIND_CUSTOMER,
    PRINCIPAL_KIND_SERVICE: risk_assessments_pb2.ACTOR_KIND_SERVICE_ACCOUNT,
}


# The methods through which a transfer reaches the gate. A phone approval (device step-up) names one of them, the
# transfer id and the amount; it approves exactly that transfer, whichever of these carries it.
GATED_METHODS = frozenset(
    {
        "/wallet.ledger.v1.LedgerService/CreateTransfer",
        "/wallet.ledger.v1.LedgerService/CreateTransferBatch",
        "/wallet.ledger.v1.LedgerService/PayByPhone",
    }
)


@dataclass(frozen=True, slots=True)
class RiskGateConfig:
    # How long a transfer waits for risk's answer before the fail-open/fail-closed tier decides.
    deadline_s: float = 0.05
    # Risk unavailable: amounts below this (minor units, any currency) commit unassessed; others are refused.
    fail_open_below_minor: int = 100_000
    # The RetryInfo delay of a fail-closed refusal.
    retry_after_s: float = 1.0
    # How long a transfer held for review waits for its case before it expires by itself.
    review_hold_s: int = 3 * 24 * 3600

    def __post_init__(self) -> None:
        assert self.deadline_s > 0
        assert self.fail_open_below_minor >= 0
        assert 0 < self.review_hold_s <= limits.HOLD_TIMEOUT_S_MAX


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the gate needs of an account; none of it changes after the account is opened."""

    kind: AccountKind
    customer_id: uuid.UUID | None


class AccountFactsCache:
    """Kind and owner per (tenant, account), read from the ledger's store on first use."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], store: AccountReader) -> None:
        self._pool = pool
        self._store = store
        self._facts: dict[tuple[uuid.UUID, uuid.UUID], AccountFacts] = {}

    async def facts(self, organization_id: uuid.UUID, account_id: uuid.UUID) -> AccountFacts | None:
        key = (organization_id, account_id)
        known = self._facts.get(key)
        if known is not None:
            return known
        async with self._pool().acquire() as connection:
            account = await self._store.get_account(connection, organization_id, account_id)
        if account is None:
            return None  # the commit declines it with ACCOUNT_NOT_FOUND
        facts = AccountFacts(account.kind, account.customer_id)
        if len(self._facts) >= ACCOUNT_FACTS_CACHED_MAX:
            del self._facts[next(iter(self._facts))]
        self._facts[key] = facts
        return facts


@dataclass(frozen=True, slots=True)
class _Answer:
    decision: RiskDecision
    record: RiskRecord


@dataclass(frozen=True, slots=True)
class RiskGateSetup:
    """What ``python -m services.ledger`` configures; the app builds the gate once its pool and store exist."""

    config: RiskGateConfig
    risk_addr: str
    tokens: ServiceTokenSource

    def build(self, pool: Callable[[], asyncpg.Pool], store: AccountReader) -> RiskGate:
        return RiskGate(
            self.config, risk_addr=self.risk_addr, tokens=self.tokens, accounts=AccountFactsCache(pool, store)
        )


class RiskGate:
    """``PreCommitGate`` that asks risk."""

    def __init__(
        self,
        config: RiskGateConfig,
        *,
        risk_addr: str,
        tokens: ServiceTokenSource,
        accounts: AccountFactsCache,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._risk = ServiceChannel(risk_addr)
        self._tokens = tokens
        self._accounts = accounts
        self._clock_s = clock_s
        self._last_unavailable_log_s = float("-inf")

    async def before_commit(self, caller: Caller, command: TransferCommand) -> TransferCommand:
        org = caller.organization_id
        debit = await self._accounts.facts(org, command.debit_account_id)
        if debit is None or not caller.may_see(debit.customer_id):
            return command  # the commit declines it (ACCOUNT_NOT_FOUND): nothing to assess
        if debit.kind not in GATED_ACCOUNT_KINDS:
            GATE_OUTCOMES.labels("not_required").inc()
            return replace(command, risk=RiskRecord(check=RiskCheck.NOT_REQUIRED))
        credit = await self._accounts.facts(org, command.credit_account_id)
        principal = current_principal()
        request = _assess_request(caller, principal, command, debit, credit)
        answer = await self._assess(caller, request)
        if answer is None:
            return self._unassessed(command)
        return self._apply(command, principal, answer)

    def _has_step_up(self, principal: Principal, command: TransferCommand) -> bool:
        """A fresh step-up; a phone's step-up (bound token) counts only for this transfer id and its amount."""
        now_s = self._clock_s()
        if principal.bound_method is None:
            return principal.has_fresh_step_up(now_s)
        if principal.bound_method not in GATED_METHODS or principal.bound_amount_minor is None:
            return False
        return principal.has_fresh_step_up_for(
            principal.bound_method,
            str(command.transfer_id),
            now_s,
            amount=(command.currency, command.amount_minor),
        )

    def _apply(self, command: TransferCommand, principal: Principal | None, answer: _Answer) -> TransferCommand:
        decision = answer.decision
        if decision is RiskDecision.ALLOW:
            GATE_OUTCOMES.labels("allow").inc()
            return replace(command, risk=answer.record)
        if decision is RiskDecision.CHALLENGE:
            if principal is None or not self._has_step_up(principal, command):
                GATE_OUTCOMES.labels("step_up_required").inc()
                raise StepUpRequired("risk checks ask for a fresh step-up authentication for this transfer")
            GATE_OUTCOMES.labels("challenge_passed").inc()
            return replace(command, risk=answer.record)
        if decision is RiskDecision.REVIEW:
            GATE_OUTCOMES.labels("review").inc()
            timeout_ms = command.hold_timeout_ms if command.pending else self._config.review_hold_s * 1000
            return replace(
                command, pending=True, hold_timeout_ms=timeout_ms, awaiting_review=True, risk=answer.record
            )
        GATE_OUTCOMES.labels("deny").inc()
        raise RiskDenied(answer.record.reason_codes)

    def _unassessed(self, command: TransferCommand) -> TransferCommand:
        if command.amount_minor < self._config.fail_open_below_minor:
            GATE_OUTCOMES.labels("failed_open").inc()
            return replace(command, risk=RiskRecord(check=RiskCheck.FAILED_OPEN))
        GATE_OUTCOMES.labels("failed_closed").inc()
        raise RiskUnavailable(self._config.retry_after_s)

    async def _assess(self, caller: Caller, request: risk_assessments_pb2.AssessRequest) -> _Answer | None:
        """Risk's answer, or None when risk could not give one in time (the tier decides)."""
        organization_id = str(caller.organization_id)
        try:
            token = await self._tokens.token_for(organization_id)
        except ServiceTokenUnavailable as err:
            self._log_unavailable(f"no service token for risk: {err}")
            return None
        try:
            response = await risk_service_pb2_grpc.RiskServiceStub(self._risk.get()).Assess(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=self._config.deadline_s
            )
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.ALREADY_EXISTS:
                # Risk saw this transfer id with another payment: the same client id reused for different content.
                raise IdempotencyKeyReused("transfer_id", "content") from err
            self._log_unavailable(f"risk answered {err.code().name}")
            return None
        return _answer(response.assessment)

    def _log_unavailable(self, message: str) -> None:
        # Throttled: when risk is down every transfer would log the same line.
        now_s = time.monotonic()
        if now_s - self._last_unavailable_log_s >= UNAVAILABLE_LOG_INTERVAL_S:
            self._last_unavailable_log_s = now_s
            log.warning(
                "risk gate: %s; failing open below %d minor units", message, self._config.fail_open_below_minor
            )

    async def connect(self) -> None:
        """Connects to risk at start (a background job), so the first transfer's deadline is not spent on the TCP
        and HTTP/2 handshake. gRPC reconnects by itself afterwards."""
        try:
            await asyncio.wait_for(self._risk.get().channel_ready(), CONNECT_WAIT_S)
        except TimeoutError:
            log.warning(
                "risk gate: risk not reachable at %s yet; transfers use the fail-open tier", self._risk.address
            )

    async def close(self) -> None:
        await self._risk.close()


def _answer(assessment: risk_assessments_pb2.Assessment) -> _Answer | None:
    decision = _DECISIONS.get(assessment.decision)
    if decision is None:
        return None
    case_id: uuid.UUID | None = None
    if decision is RiskDecision.REVIEW:
        try:
            case_id = uuid.UUID(assessment.case_id)
        except ValueError:
            return None  # a REVIEW without its case cannot be resolved: treat it as no answer
    record = RiskRecord(
        check=RiskCheck.ASSESSED,
        decision=decision,
        score=max(0, min(100, assessment.score)),
        reason_codes=tuple(assessment.reason_codes),
        rules_version=assessment.rules_version,
        case_id=case_id,
    )
    return _Answer(decision, record)


def _assess_request(
    caller: Caller,
    principal: Principal | None,
    command: TransferCommand,
    debit: AccountFacts,
    credit: AccountFacts | None,
) -> risk_assessments_pb2.AssessRequest:
    context = risk_assessments_pb2.AssessmentContext(
        transfer_id=str(command.transfer_id),
        debit_account_id=str(command.debit_account_id),
        credit_account_id=str(command.credit_account_id),
        debit_customer_id=str(debit.customer_id or ""),
        credit_customer_id=str(credit.customer_id or "") if credit is not None else "",
        debit_account_kind=int(debit.kind),  # type: ignore[arg-type]
        credit_account_kind=int(credit.kind) if credit is not None else 0,  # type: ignore[arg-type]
        amount=money_pb2.Money(currency=command.currency, amount_minor=command.amount_minor),
        transfer_kind=int(command.kind),  # type: ignore[arg-type]
        channel=_channel(principal, command),
        device_id=caller.device_id,
        principal_id=caller.principal_id,
    )
    if principal is not None:
        context.actor_kind = _ACTOR_KINDS.get(principal.kind, risk_assessments_pb2.ACTOR_KIND_MEMBER)
        context.auth_strength.amr.extend(principal.amr)
        context.auth_strength.acr = principal.acr
        context.auth_strength.auth_time.FromSeconds(principal.auth_time)
    # The transfer id is the assessment id: a retried transfer gets the first decision and counts once.
    return risk_assessments_pb2.AssessRequest(assessment_id=str(command.transfer_id), context=context)


def _channel(principal: Principal | None, command: TransferCommand) -> risk_assessments_pb2.Channel.ValueType:
    if command.batch_id is not None:
        return risk_assessments_pb2.CHANNEL_BATCH
    if principal is not None and principal.kind == PRINCIPAL_KIND_SERVICE:
        return risk_assessments_pb2.CHANNEL_API
    return risk_assessments_pb2.CHANNEL_UNSPECIFIED
