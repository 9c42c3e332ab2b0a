"""The ledger's risk gate end to end: a real ledger and a real risk server (each on port 0 with its own database, the
same Redis), calling each other with service tokens; risk's rules are published per tenant so each amount band
draws one decision. CHALLENGE then success after step-up, REVIEW then approve posts / reject voids (through risk's
ResolveCase and the ledger's ResolveTransferReview), DENY, risk stopped → fail open below and fail closed above the
tier, and the outcome recorded on each transfer and counted in the metric."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from prometheus_client import REGISTRY

from devstack.databases import with_database
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.migrations import apply_migrations
from services.kit.status import ErrorDetails
from services.kit.testing import SigningKey, config_for_tests, start_test_server, static_verifier
from services.ledger.app import LedgerApp
from services.ledger.caller import Caller
from services.ledger.domain_transfers import TransferCommand
from services.ledger.risk_gate import RiskGateConfig, RiskGateSetup
from services.ledger.server import registrations_for
from services.ledger.service_transfers import NoGate, PreCommitGate
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.ledger_client import GrpcLedgerReviews
from tests.integration.ledger.conftest import drop_database, migrated_database
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_approvals_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)
from wallet.risk.v1 import risk_cases_pb2, risk_rules_pb2, risk_service_pb2_grpc

pytestmark = pytest.mark.integration

RISK_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "risk" / "migrations"
CUSTOMER_WALLET = ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET
SUSPENSE = ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE
# A generous deadline here: these tests check decisions, not speed (the bench measures the gate's cost).
DEADLINE_S = 5.0
FAIL_OPEN_BELOW_MINOR = 10_000


def _band(rule_id: str, reason: str, outcome: str, low: int, high: int) -> dict[str, Any]:
    return {
        "id": rule_id,
        "reason": reason,
        "weight": 0,
        "outcome": outcome,
        "when": {
            "all": [
                {"feature": "payment.amount_minor", "op": ">=", "value": low},
                {"feature": "payment.amount_minor", "op": "<", "value": high},
            ]
        },
    }


# Below 20,000 ALLOW; 20,000-29,999 CHALLENGE; 30,000-39,999 REVIEW; 40,000-49,999 DENY.
RULES = {
    "thresholds": {"challenge": 30, "review": 60, "deny": 90},
    "rules": [
        _band("challenge_band", "STEP_UP_FOR_AMOUNT", "CHALLENGE", 20_000, 30_000),
        _band("review_band", "UNUSUAL_AMOUNT", "REVIEW", 30_000, 40_000),
        _band("deny_band", "AMOUNT_NOT_ALLOWED", "DENY", 40_000, 50_000),
    ],
}


class ServiceTokens:
    """Service-account tokens as auth's IssueServiceToken would issue them (auth itself is tested with the kit)."""

    def __init__(self, key: SigningKey, scope: str) -> None:
        self._key = key
        self._scope = scope

    async def token_for(self, organization_id: str) -> str:
        return self._key.mint(pty="service", roles=[], scope=self._scope, org=organization_id)


@dataclass
class GateSlot:
    """The ledger's gate, set once risk's port is known (the two servers call each other)."""

    inner: PreCommitGate = field(default_factory=NoGate)

    async def before_commit(self, caller: Caller, command: TransferCommand) -> TransferCommand:
        return await self.inner.before_commit(caller, command)


@dataclass
class Suite:
    key: SigningKey
    ledger: Any
    risk: Any
    ledger_app: LedgerApp
    ledger_server: WalletServer
    risk_server: WalletServer
    slot: GateSlot
    postgres_server_url: str
    redis_url: str
    risk_database_url: str

    def auth(self, org: str, **claims: Any) -> tuple[tuple[str, str], ...]:
        claims.setdefault("roles", ["owner"])
        return (("authorization", f"Bearer {self.key.mint(org=org, **claims)}"),)

    def customer(self, org: str, customer_id: str, *, step_up: bool = False) -> tuple[tuple[str, str], ...]:
        extra: dict[str, Any] = {}
        if step_up:
            extra = {"acr": "mfa", "amr": ["pwd", "otp"], "auth_time": int(time.time())}
        return self.auth(org, roles=["customer"], pty="customer", sub=customer_id, **extra)

    def approver(self, org: str) -> tuple[tuple[str, str], ...]:
        return self.auth(org, roles=["approver"], acr="mfa", amr=["pwd", "otp"], auth_time=int(time.time()))

    def gate(self, risk_addr: str, **config: Any) -> PreCommitGate:
        settings = RiskGateConfig(
            **{"deadline_s": DEADLINE_S, "fail_open_below_minor": FAIL_OPEN_BELOW_MINOR, **config}
        )
        setup = RiskGateSetup(settings, risk_addr, ServiceTokens(self.key, "risk.assessments.assess"))
        return setup.build(lambda: self.ledger_server.runtime.pool, self.ledger_app.store)

    async def tenant(self) -> tuple[str, str, str]:
        """A tenant with the banded rules, a funded customer wallet: (org, customer id, wallet account id)."""
        org, customer_id = str(uuid.uuid4()), str(uuid.uuid4())
        await self.risk.PublishRules(
            risk_rules_pb2.PublishRulesRequest(
                document=json.dumps(RULES),
                format=risk_rules_pb2.RULE_FORMAT_JSON,
                expected_active_version=0,
                request_id=str(uuid.uuid4()),
            ),
            metadata=self.auth(org, roles=["risk_analyst"]),
        )
        wallet = await self.open(org, CUSTOMER_WALLET, customer_id=customer_id)
        source = await self.open(org, SUSPENSE)
        funding = await self.transfer(org, source, wallet, 1_000_000, self.auth(org))
        # Out of a suspense account: not assessed, and recorded as such.
        assert funding.risk.check == ledger_transfers_pb2.RISK_CHECK_NOT_REQUIRED
        return org, customer_id, wallet

    async def open(self, org: str, kind: int, *, customer_id: str = "") -> str:
        account_id = str(uuid.uuid4())
        await self.ledger.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=account_id, kind=kind, currency="EUR", customer_id=customer_id
            ),
            metadata=self.auth(org),
        )
        return account_id

    async def transfer(
        self,
        org: str,
        debit: str,
        credit: str,
        amount_minor: int,
        metadata: Sequence[tuple[str, str]],
        transfer_id: str = "",
    ) -> ledger_transfers_pb2.Transfer:
        response = await self.ledger.CreateTransfer(
            ledger_transfers_pb2.CreateTransferRequest(
                transfer_id=transfer_id or str(uuid.uuid4()),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            ),
            metadata=metadata,
        )
        return response.transfer

    async def payee(self, org: str) -> str:
        return await self.open(org, CUSTOMER_WALLET, customer_id=str(uuid.uuid4()))

    async def available(self, org: str, account_id: str) -> int:
        response = await self.ledger.GetAccount(
            ledger_accounts_pb2.GetAccountRequest(account_id=account_id), metadata=self.auth(org)
        )
        return response.account.balance.available.amount_minor


async def _risk_database(postgres_server_url: str) -> tuple[str, str]:
    name = f"test_risk_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(postgres_server_url, name)
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection, RISK_MIGRATIONS, scope="risk")
    finally:
        await connection.close()
    return url, name


async def start_risk(database_url: str, redis_url: str, key: SigningKey, ledger_addr: str) -> WalletServer:
    from services.risk.server import registrations_for as risk_registrations

    suffix = uuid.uuid4().hex[:8]
    config = RiskConfig(ledger_events_stream=f"test.gate.events.{suffix}", consumer_group=f"risk-{suffix}")
    holder: list[RiskApp] = []

    def build(runtime: Runtime) -> Sequence[Registration]:
        reviews = GrpcLedgerReviews(ledger_addr, ServiceTokens(key, "ledger.reviews.approve"))
        holder.append(RiskApp(runtime, config, reviews))
        return risk_registrations(holder[0])(runtime)

    server = await start_test_server(config_for_tests("risk", database_url, redis_url), build, static_verifier(key))
    server.runtime.background_tasks.append(asyncio.create_task(holder[0].recorder.run()))
    return server


@pytest.fixture(scope="module")
async def suite(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[Suite]:
    key = SigningKey()
    ledger_url, ledger_db = await migrated_database(postgres_server_url)
    risk_url, risk_db = await _risk_database(postgres_server_url)
    slot = GateSlot()
    apps: list[LedgerApp] = []

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        apps.append(LedgerApp(runtime, gate=slot))
        return registrations_for(apps[0])

    ledger_server = await start_test_server(
        config_for_tests("ledger", ledger_url, redis_server_url), build_ledger, static_verifier(key)
    )
    risk_server = await start_risk(risk_url, redis_server_url, key, f"127.0.0.1:{ledger_server.port}")
    ledger_channel = grpc.aio.insecure_channel(f"127.0.0.1:{ledger_server.port}")
    risk_channel = grpc.aio.insecure_channel(f"127.0.0.1:{risk_server.port}")
    suite = Suite(
        key=key,
        ledger=ledger_service_pb2_grpc.LedgerServiceStub(ledger_channel),
        risk=risk_service_pb2_grpc.RiskServiceStub(risk_channel),
        ledger_app=apps[0],
        ledger_server=ledger_server,
        risk_server=risk_server,
        slot=slot,
        postgres_server_url=postgres_server_url,
        redis_url=redis_server_url,
        risk_database_url=risk_url,
    )
    slot.inner = suite.gate(f"127.0.0.1:{risk_server.port}")
    try:
        yield suite
    finally:
        await ledger_channel.close()
        await risk_channel.close()
        await risk_server.stop()
        await ledger_server.stop()
        await drop_database(postgres_server_url, ledger_db)
        await drop_database(postgres_server_url, risk_db)


def _gate_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("wallet_ledger_risk_gate_total", {"outcome": outcome}) or 0.0


async def test_allow_commits_and_records_the_assessment(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    before = _gate_count("allow")
    transfer = await suite.transfer(org, wallet, await suite.payee(org), 5_000, suite.customer(org, customer))
    assert transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert transfer.risk.check == ledger_transfers_pb2.RISK_CHECK_ASSESSED
    assert transfer.risk.decision == ledger_transfers_pb2.RISK_DECISION_ALLOW
    assert transfer.risk.assessment_id == transfer.transfer_id
    assert transfer.risk.rules_version == 1
    assert _gate_count("allow") == before + 1
    stored = await suite.ledger.GetTransfer(
        ledger_transfers_pb2.GetTransferRequest(transfer_id=transfer.transfer_id), metadata=suite.auth(org)
    )
    assert stored.transfer.risk == transfer.risk


async def test_challenge_needs_a_fresh_step_up_then_the_same_transfer_commits(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    payee = await suite.payee(org)
    transfer_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await suite.transfer(org, wallet, payee, 25_000, suite.customer(org, customer), transfer_id)
    details = ErrorDetails.from_rpc_error(refused.value)
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "STEP_UP_REQUIRED"
    assert details.precondition_types == ["STEP_UP"]
    assert await suite.available(org, wallet) == 1_000_000
    transfer = await suite.transfer(
        org, wallet, payee, 25_000, suite.customer(org, customer, step_up=True), transfer_id
    )
    assert transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert transfer.risk.decision == ledger_transfers_pb2.RISK_DECISION_CHALLENGE
    assert list(transfer.risk.reason_codes) == ["STEP_UP_FOR_AMOUNT"]
    assert await suite.available(org, wallet) == 975_000


async def test_a_phone_approval_counts_for_its_own_transfer_and_amount_only(suite: Suite) -> None:
    """A device step-up (auth issue 13) is bound to one transfer id and the amount shown on the phone."""
    org, customer, wallet = await suite.tenant()
    payee = await suite.payee(org)
    transfer_id = str(uuid.uuid4())

    def phone_approval(resource_id: str, amount_minor: int) -> tuple[tuple[str, str], ...]:
        return suite.auth(
            org,
            roles=["customer"],
            pty="customer",
            sub=customer,
            acr="mfa",
            amr=["pwd", "hwk", "bio"],
            auth_time=int(time.time()),
            bound_method="/wallet.ledger.v1.LedgerService/CreateTransfer",
            bound_resource_id=resource_id,
            bound_currency="EUR",
            bound_amount_minor=amount_minor,
        )

    for wrong in (phone_approval(transfer_id, 25_001), phone_approval(str(uuid.uuid4()), 25_000)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await suite.transfer(org, wallet, payee, 25_000, wrong, transfer_id)
        assert ErrorDetails.from_rpc_error(refused.value).reason == "STEP_UP_REQUIRED"
    transfer = await suite.transfer(org, wallet, payee, 25_000, phone_approval(transfer_id, 25_000), transfer_id)
    assert transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert transfer.risk.decision == ledger_transfers_pb2.RISK_DECISION_CHALLENGE


async def test_a_stale_step_up_is_not_enough(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    stale = suite.auth(
        org, roles=["customer"], pty="customer", sub=customer, acr="mfa", auth_time=int(time.time()) - 3600
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await suite.transfer(org, wallet, await suite.payee(org), 21_000, stale)
    assert ErrorDetails.from_rpc_error(refused.value).reason == "STEP_UP_REQUIRED"


async def test_deny_refuses_with_the_app_safe_reason(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await suite.transfer(org, wallet, await suite.payee(org), 45_000, suite.customer(org, customer, step_up=True))
    details = ErrorDetails.from_rpc_error(refused.value)
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "RISK_DENIED"
    assert details.metadata["risk_reason"] == "AMOUNT_NOT_ALLOWED"
    assert await suite.available(org, wallet) == 1_000_000


async def _held_for_review(suite: Suite) -> tuple[str, str, str, ledger_transfers_pb2.Transfer]:
    org, customer, wallet = await suite.tenant()
    payee = await suite.payee(org)
    held = await suite.transfer(org, wallet, payee, 35_000, suite.customer(org, customer))
    assert held.status == ledger_transfers_pb2.TRANSFER_STATUS_AWAITING_REVIEW
    assert held.risk.decision == ledger_transfers_pb2.RISK_DECISION_REVIEW
    assert held.risk.case_id
    assert held.HasField("hold_expires_at")
    # Reserved, not moved.
    assert await suite.available(org, wallet) == 965_000
    assert await suite.available(org, payee) == 0
    case = await suite.risk.GetCase(
        risk_cases_pb2.GetCaseRequest(case_id=held.risk.case_id), metadata=suite.approver(org)
    )
    assert case.review_case.transfer_id == held.transfer_id
    return org, wallet, payee, held


async def _resolve(suite: Suite, org: str, case_id: str, resolution: int) -> risk_cases_pb2.ReviewCase:
    response = await suite.risk.ResolveCase(
        risk_cases_pb2.ResolveCaseRequest(
            case_id=case_id, resolution=resolution, note="checked with the customer", request_id=str(uuid.uuid4())
        ),
        metadata=suite.approver(org),
    )
    return response.review_case


async def test_review_holds_the_transfer_until_approval_posts_it(suite: Suite) -> None:
    org, wallet, payee, held = await _held_for_review(suite)
    with pytest.raises(grpc.aio.AioRpcError) as not_yours:
        await suite.ledger.PostPendingTransfer(
            ledger_transfers_pb2.PostPendingTransferRequest(
                transfer_id=held.transfer_id, request_id=str(uuid.uuid4())
            ),
            metadata=suite.auth(org),
        )
    assert ErrorDetails.from_rpc_error(not_yours.value).reason == "HOLD_NOT_PENDING"
    case = await _resolve(suite, org, held.risk.case_id, risk_cases_pb2.CASE_RESOLUTION_APPROVE)
    assert [event.action for event in case.history][-1] == "ledger_posted"
    posted = await suite.ledger.GetTransfer(
        ledger_transfers_pb2.GetTransferRequest(transfer_id=held.transfer_id), metadata=suite.auth(org)
    )
    assert posted.transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert posted.transfer.risk.case_id == held.risk.case_id
    assert await suite.available(org, wallet) == 965_000
    assert await suite.available(org, payee) == 35_000


async def test_review_rejected_voids_the_transfer(suite: Suite) -> None:
    org, wallet, payee, held = await _held_for_review(suite)
    await _resolve(suite, org, held.risk.case_id, risk_cases_pb2.CASE_RESOLUTION_REJECT)
    voided = await suite.ledger.GetTransfer(
        ledger_transfers_pb2.GetTransferRequest(transfer_id=held.transfer_id), metadata=suite.auth(org)
    )
    assert voided.transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_VOIDED
    assert voided.transfer.void_reason == ledger_transfers_pb2.VOID_REASON_REVIEW_REJECTED
    assert await suite.available(org, wallet) == 1_000_000
    assert await suite.available(org, payee) == 0


async def test_resolve_transfer_review_needs_the_holding_case_and_is_idempotent(suite: Suite) -> None:
    org, _, _, held = await _held_for_review(suite)
    risk_service = suite.auth(org, roles=[], pty="service", scope="ledger.reviews.approve")

    def request(case_id: str, request_id: str) -> ledger_approvals_pb2.ResolveTransferReviewRequest:
        return ledger_approvals_pb2.ResolveTransferReviewRequest(
            transfer_id=held.transfer_id,
            case_id=case_id,
            outcome=ledger_approvals_pb2.REVIEW_OUTCOME_REJECT,
            request_id=request_id,
        )

    with pytest.raises(grpc.aio.AioRpcError) as wrong_case:
        await suite.ledger.ResolveTransferReview(request(str(uuid.uuid4()), str(uuid.uuid4())), metadata=risk_service)
    assert ErrorDetails.from_rpc_error(wrong_case.value).code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as owner:
        await suite.ledger.ResolveTransferReview(
            request(held.risk.case_id, str(uuid.uuid4())), metadata=suite.auth(org)
        )
    assert owner.value.code() == grpc.StatusCode.PERMISSION_DENIED
    request_id = str(uuid.uuid4())
    first = await suite.ledger.ResolveTransferReview(request(held.risk.case_id, request_id), metadata=risk_service)
    again = await suite.ledger.ResolveTransferReview(request(held.risk.case_id, request_id), metadata=risk_service)
    assert first.transfer.status == again.transfer.status == ledger_transfers_pb2.TRANSFER_STATUS_VOIDED
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await suite.ledger.ResolveTransferReview(
            ledger_approvals_pb2.ResolveTransferReviewRequest(transfer_id="x", request_id=request_id),
            metadata=risk_service,
        )
    assert {v.field for v in ErrorDetails.from_rpc_error(bad.value).field_violations} == {
        "transfer_id",
        "case_id",
        "outcome",
    }


async def test_a_batch_item_risk_refuses_fails_alone(suite: Suite) -> None:
    org, _, wallet = await suite.tenant()
    payee = await suite.payee(org)

    def item(amount_minor: int) -> ledger_transfers_pb2.BatchTransfer:
        return ledger_transfers_pb2.BatchTransfer(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=wallet,
            credit_account_id=payee,
            amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
        )

    response = await suite.ledger.CreateTransferBatch(
        ledger_transfers_pb2.CreateTransferBatchRequest(
            batch_id=str(uuid.uuid4()), transfers=[item(1_000), item(45_000), item(2_000)]
        ),
        metadata=suite.auth(org),
    )
    assert [r.transfer.status for r in response.results] == [
        ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
        ledger_transfers_pb2.TRANSFER_STATUS_UNSPECIFIED,
        ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
    ]
    assert response.results[1].error_metadata["risk_reason"] == "AMOUNT_NOT_ALLOWED"
    assert await suite.available(org, payee) == 3_000


async def test_risk_stopped_fails_open_below_the_tier_and_closed_above(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    payee = await suite.payee(org)
    ledger_addr = f"127.0.0.1:{suite.ledger_server.port}"
    own_risk = await start_risk(suite.risk_database_url, suite.redis_url, suite.key, ledger_addr)
    gate = suite.gate(f"127.0.0.1:{own_risk.port}")
    suite.slot.inner = gate
    try:
        assessed = await suite.transfer(org, wallet, payee, 1_000, suite.customer(org, customer))
        assert assessed.risk.check == ledger_transfers_pb2.RISK_CHECK_ASSESSED
        await own_risk.stop()
        open_before, closed_before = _gate_count("failed_open"), _gate_count("failed_closed")
        below = await suite.transfer(org, wallet, payee, FAIL_OPEN_BELOW_MINOR - 1, suite.customer(org, customer))
        assert below.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
        assert below.risk.check == ledger_transfers_pb2.RISK_CHECK_FAILED_OPEN
        assert below.risk.decision == ledger_transfers_pb2.RISK_DECISION_UNSPECIFIED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await suite.transfer(org, wallet, payee, FAIL_OPEN_BELOW_MINOR, suite.customer(org, customer))
        details = ErrorDetails.from_rpc_error(refused.value)
        assert details.code == grpc.StatusCode.UNAVAILABLE
        assert details.retry_after_s == 1.0
        assert _gate_count("failed_open") == open_before + 1
        assert _gate_count("failed_closed") == closed_before + 1
        assert await suite.available(org, payee) == 1_000 + FAIL_OPEN_BELOW_MINOR - 1
    finally:
        suite.slot.inner = suite.gate(f"127.0.0.1:{suite.risk_server.port}")
        await own_risk.stop()


async def test_risk_late_is_treated_like_risk_down(suite: Suite) -> None:
    org, customer, wallet = await suite.tenant()
    payee = await suite.payee(org)
    # No risk answers within a microsecond: every call is late.
    suite.slot.inner = suite.gate(f"127.0.0.1:{suite.risk_server.port}", deadline_s=0.000_001)
    try:
        below = await suite.transfer(org, wallet, payee, 500, suite.customer(org, customer))
        assert below.risk.check == ledger_transfers_pb2.RISK_CHECK_FAILED_OPEN
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await suite.transfer(org, wallet, payee, 50_000, suite.customer(org, customer))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        suite.slot.inner = suite.gate(f"127.0.0.1:{suite.risk_server.port}")


async def test_a_reversal_passes_the_same_gate(suite: Suite) -> None:
    """A refund out of a customer wallet is assessed like any transfer out of it: DENY refuses it with nothing
    written, REVIEW holds it (reserving what it reverses) until the case posts it, ALLOW commits it."""
    org = (await suite.tenant())[0]
    payee = await suite.payee(org)
    source = await suite.open(org, SUSPENSE)
    original = await suite.transfer(org, source, payee, 100_000, suite.auth(org))

    def reversal(amount_minor: int) -> ledger_transfers_pb2.ReverseTransferRequest:
        return ledger_transfers_pb2.ReverseTransferRequest(
            transfer_id=str(uuid.uuid4()),
            original_transfer_id=original.transfer_id,
            amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
            reason=ledger_transfers_pb2.REVERSAL_REASON_CUSTOMER_REQUEST,
        )

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await suite.ledger.ReverseTransfer(reversal(45_000), metadata=suite.auth(org))
    assert ErrorDetails.from_rpc_error(denied.value).reason == "RISK_DENIED"
    assert await suite.available(org, payee) == 100_000

    held = (await suite.ledger.ReverseTransfer(reversal(35_000), metadata=suite.auth(org))).transfer
    assert held.status == ledger_transfers_pb2.TRANSFER_STATUS_AWAITING_REVIEW
    assert held.risk.decision == ledger_transfers_pb2.RISK_DECISION_REVIEW
    assert held.reversal_of_transfer_id == original.transfer_id
    with pytest.raises(grpc.aio.AioRpcError) as exceeds:
        await suite.ledger.ReverseTransfer(reversal(65_001), metadata=suite.auth(org))
    assert ErrorDetails.from_rpc_error(exceeds.value).metadata["remaining_minor"] == "65000"

    allowed = (await suite.ledger.ReverseTransfer(reversal(5_000), metadata=suite.auth(org))).transfer
    assert allowed.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert allowed.risk.check == ledger_transfers_pb2.RISK_CHECK_ASSESSED
    assert allowed.risk.decision == ledger_transfers_pb2.RISK_DECISION_ALLOW

    await _resolve(suite, org, held.risk.case_id, risk_cases_pb2.CASE_RESOLUTION_APPROVE)
    shown = await suite.ledger.GetTransfer(
        ledger_transfers_pb2.GetTransferRequest(transfer_id=original.transfer_id), metadata=suite.auth(org)
    )
    assert shown.transfer.reversed_amount.amount_minor == 40_000
    assert await suite.available(org, payee) == 60_000
