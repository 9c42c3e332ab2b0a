"""Maker-checker through the real server: the policy, transfers held for approval, approve / reject by a second
member, the maker refused, expiry, the pending list, races, invoices paid under approval, and the audit trail."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import grpc
import pytest

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_approvals_pb2 as pb
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb
from wallet.ledger.v1 import ledger_invoices_pb2 as invoices_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration

THRESHOLD_MINOR = 1_000


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency="EUR", amount_minor=amount_minor)


class Tenant:
    """One tenant per test (the policy is per tenant), with a maker and an approver."""

    def __init__(self, ledger: LedgerHarness) -> None:
        self.ledger = ledger
        self.org = str(uuid.uuid4())
        self.maker = str(uuid.uuid4())
        self.approver = str(uuid.uuid4())

    def auth(self, sub: str, roles: list[str], *, step_up: bool = False) -> tuple[tuple[str, str], ...]:
        claims: dict[str, Any] = {"org": self.org, "roles": roles, "sub": sub}
        if step_up:
            claims.update(acr="mfa", auth_time=int(time.time()))
        return self.ledger.auth(**claims)

    def maker_auth(self, *, step_up: bool = False) -> tuple[tuple[str, str], ...]:
        return self.auth(self.maker, ["finance", "approver"], step_up=step_up)

    def approver_auth(self) -> tuple[tuple[str, str], ...]:
        return self.auth(self.approver, ["approver"], step_up=True)

    def owner_auth(self) -> tuple[tuple[str, str], ...]:
        return self.auth(str(uuid.uuid4()), ["owner"], step_up=True)

    async def set_policy(self, threshold_minor: int = THRESHOLD_MINOR) -> pb.SetApprovalPolicyResponse:
        rule = pb.ApprovalRule(
            account_kind=accounts_pb.ACCOUNT_KIND_OPERATING, currency="EUR", threshold=_eur(threshold_minor)
        )
        request = pb.SetApprovalPolicyRequest(policy=pb.ApprovalPolicy(rules=[rule]), request_id=str(uuid.uuid4()))
        response: pb.SetApprovalPolicyResponse = await self.ledger.stub.SetApprovalPolicy(
            request, metadata=self.owner_auth()
        )
        return response

    async def funded_pair(self, amount_minor: int = 10_000) -> tuple[str, str]:
        payer = await self.ledger.open(org=self.org)
        payee = await self.ledger.open(org=self.org)
        await self.ledger.fund(payer, amount_minor, org=self.org)
        return payer, payee

    async def make(self, payer: str, payee: str, amount_minor: int, **fields: Any) -> transfers_pb.Transfer:
        response = await self.ledger.stub.CreateTransfer(
            transfers_pb.CreateTransferRequest(
                transfer_id=str(uuid.uuid4()),
                debit_account_id=payer,
                credit_account_id=payee,
                amount=_eur(amount_minor),
                **fields,
            ),
            metadata=self.maker_auth(),
        )
        transfer: transfers_pb.Transfer = response.transfer
        return transfer

    def approve(self, transfer_id: str, metadata: Any = None, request_id: str | None = None) -> Any:
        return self.ledger.stub.ApproveTransfer(
            pb.ApproveTransferRequest(transfer_id=transfer_id, note="ok", request_id=request_id or str(uuid.uuid4())),
            metadata=metadata or self.approver_auth(),
        )

    def reject(self, transfer_id: str, metadata: Any = None) -> Any:
        return self.ledger.stub.RejectTransfer(
            pb.RejectTransferRequest(transfer_id=transfer_id, reason="not budgeted", request_id=str(uuid.uuid4())),
            metadata=metadata or self.approver_auth(),
        )


async def test_policy_set_get_replay_and_bad_input(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    empty = await ledger.stub.GetApprovalPolicy(pb.GetApprovalPolicyRequest(), metadata=tenant.owner_auth())
    assert list(empty.policy.rules) == []
    rule = pb.ApprovalRule(account_kind=accounts_pb.ACCOUNT_KIND_OPERATING, currency="EUR", threshold=_eur(500))
    request = pb.SetApprovalPolicyRequest(policy=pb.ApprovalPolicy(rules=[rule]), request_id=str(uuid.uuid4()))
    owner = tenant.owner_auth()
    first = await ledger.stub.SetApprovalPolicy(request, metadata=owner)
    assert first.policy.rules[0].threshold.amount_minor == 500
    assert (await ledger.stub.SetApprovalPolicy(request, metadata=owner)) == first
    request.policy.rules[0].threshold.amount_minor = 600
    reused = await _error(ledger.stub.SetApprovalPolicy(request, metadata=owner))
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    read = await ledger.stub.GetApprovalPolicy(pb.GetApprovalPolicyRequest(), metadata=owner)
    assert read.policy == first.policy
    bad_rules = [
        (pb.ApprovalRule(account_kind=99, currency="EUR", threshold=_eur(1)), "policy.rules[0].account_kind"),
        (
            pb.ApprovalRule(account_kind=accounts_pb.ACCOUNT_KIND_OPERATING, currency="EUR", threshold=_eur(-1)),
            "policy.rules[0].threshold.amount_minor",
        ),
        (
            pb.ApprovalRule(
                account_kind=accounts_pb.ACCOUNT_KIND_OPERATING,
                currency="EUR",
                threshold=money_pb2.Money(currency="USD", amount_minor=1),
            ),
            "policy.rules[0].threshold.currency",
        ),
    ]
    for bad, field in bad_rules:
        details = await _error(
            ledger.stub.SetApprovalPolicy(
                pb.SetApprovalPolicyRequest(policy=pb.ApprovalPolicy(rules=[bad]), request_id=str(uuid.uuid4())),
                metadata=owner,
            )
        )
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in {v.field for v in details.field_violations}
    duplicate = await _error(
        ledger.stub.SetApprovalPolicy(
            pb.SetApprovalPolicyRequest(policy=pb.ApprovalPolicy(rules=[rule, rule]), request_id=str(uuid.uuid4())),
            metadata=owner,
        )
    )
    assert "policy.rules[1]" in {v.field for v in duplicate.field_violations}
    no_step_up = await _error(
        ledger.stub.SetApprovalPolicy(
            pb.SetApprovalPolicyRequest(policy=pb.ApprovalPolicy(), request_id=str(uuid.uuid4())),
            metadata=tenant.auth(str(uuid.uuid4()), ["owner"]),
        )
    )
    assert no_step_up.reason == "STEP_UP_REQUIRED"
    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id=tenant.org), metadata=owner
    )
    assert [e.method for e in audit.audit_events] == ["SetApprovalPolicy"]
    assert '"OPERATING", "EUR", 500' in audit.audit_events[0].details["new_rules"]


async def test_above_threshold_waits_and_a_second_member_approves(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair()
    at_threshold = await tenant.make(payer, payee, THRESHOLD_MINOR)
    assert at_threshold.status == transfers_pb.TRANSFER_STATUS_POSTED
    held = await tenant.make(payer, payee, THRESHOLD_MINOR + 1)
    assert held.status == transfers_pb.TRANSFER_STATUS_AWAITING_APPROVAL
    balance = await ledger.balance(payer, org=tenant.org)
    assert balance.pending_debits_minor == THRESHOLD_MINOR + 1
    assert balance.available.amount_minor == 10_000 - THRESHOLD_MINOR - (THRESHOLD_MINOR + 1)
    # Not through the ordinary hold verbs, not by the maker.
    bypass = await _error(
        ledger.stub.PostPendingTransfer(
            transfers_pb.PostPendingTransferRequest(transfer_id=held.transfer_id, request_id=str(uuid.uuid4())),
            metadata=tenant.maker_auth(),
        )
    )
    assert bypass.code == grpc.StatusCode.FAILED_PRECONDITION
    assert bypass.reason == "APPROVAL_REQUIRED"
    own = await _error(tenant.approve(held.transfer_id, metadata=tenant.maker_auth(step_up=True)))
    assert own.code == grpc.StatusCode.PERMISSION_DENIED
    assert own.reason == "SELF_APPROVAL_FORBIDDEN"
    own_reject = await _error(tenant.reject(held.transfer_id, metadata=tenant.maker_auth()))
    assert own_reject.reason == "SELF_APPROVAL_FORBIDDEN"
    no_role = await _error(tenant.approve(held.transfer_id, metadata=tenant.auth(str(uuid.uuid4()), ["finance"])))
    assert no_role.code == grpc.StatusCode.PERMISSION_DENIED
    request_id = str(uuid.uuid4())
    approved = await tenant.approve(held.transfer_id, request_id=request_id)
    assert approved.transfer.status == transfers_pb.TRANSFER_STATUS_POSTED
    assert approved.transfer.approved_by_principal_id == tenant.approver
    assert approved.transfer.posted_amount.amount_minor == THRESHOLD_MINOR + 1
    assert (await tenant.approve(held.transfer_id, request_id=request_id)) == approved
    read = await ledger.stub.GetTransfer(
        transfers_pb.GetTransferRequest(transfer_id=held.transfer_id), metadata=tenant.maker_auth()
    )
    assert read.transfer.approved_by_principal_id == tenant.approver
    assert read.transfer.created_by_principal_id == tenant.maker
    late_reject = await _error(tenant.reject(held.transfer_id))
    assert late_reject.reason == "HOLD_NOT_PENDING"
    balance = await ledger.balance(payer, org=tenant.org)
    assert balance.pending_debits_minor == 0
    assert balance.posted_debits_minor == 2 * THRESHOLD_MINOR + 1
    # Other kinds and currencies are not in the policy: the suspense account that funded the payer posts at once.
    suspense = await ledger.open(org=tenant.org, kind=accounts_pb.ACCOUNT_KIND_SUSPENSE)
    unruled = await ledger.transfer(suspense, payee, 50 * THRESHOLD_MINOR, org=tenant.org)
    assert unruled.status == transfers_pb.TRANSFER_STATUS_POSTED
    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id=held.transfer_id), metadata=tenant.owner_auth()
    )
    assert [(e.method, e.actor_principal_id) for e in audit.audit_events] == [("ApproveTransfer", tenant.approver)]
    assert audit.audit_events[0].details["maker_principal_id"] == tenant.maker


async def test_reject_voids_and_releases(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair()
    held = await tenant.make(payer, payee, 5_000)
    rejected = await tenant.reject(held.transfer_id)
    assert rejected.transfer.status == transfers_pb.TRANSFER_STATUS_VOIDED
    assert rejected.transfer.void_reason == transfers_pb.VOID_REASON_APPROVAL_REJECTED
    read = await ledger.stub.GetTransfer(
        transfers_pb.GetTransferRequest(transfer_id=held.transfer_id), metadata=tenant.maker_auth()
    )
    assert read.transfer.approved_by_principal_id == tenant.approver  # the member who decided, rejecting too
    assert (await ledger.balance(payer, org=tenant.org)).available.amount_minor == 10_000
    approve_after = await _error(tenant.approve(held.transfer_id))
    assert approve_after.reason == "HOLD_NOT_PENDING"
    missing_reason = await _error(
        ledger.stub.RejectTransfer(
            pb.RejectTransferRequest(transfer_id=held.transfer_id, request_id=str(uuid.uuid4())),
            metadata=tenant.approver_auth(),
        )
    )
    assert missing_reason.code == grpc.StatusCode.INVALID_ARGUMENT
    stranger = ledger.auth(roles=["approver"], acr="mfa", auth_time=int(time.time()))
    other_tenant = await _error(tenant.approve(held.transfer_id, metadata=stranger))
    assert other_tenant.code == grpc.StatusCode.NOT_FOUND


async def test_approvals_expire_with_the_hold(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair()
    swept = await tenant.make(payer, payee, 2_000)
    overdue = await tenant.make(payer, payee, 3_000)
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(
            "UPDATE transfers SET hold_expires_at = now() - interval '1 second' WHERE transfer_id = $1",
            uuid.UUID(overdue.transfer_id),
        )
    # Past its time but not swept yet: no decision any more.
    too_late = await _error(tenant.approve(overdue.transfer_id))
    assert too_late.reason == "HOLD_NOT_PENDING"
    assert too_late.metadata["status"] == "EXPIRED"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert await ledger.app.approvals.expire_due_approvals(later) >= 2
    for transfer_id in (swept.transfer_id, overdue.transfer_id):
        read = await ledger.stub.GetTransfer(
            transfers_pb.GetTransferRequest(transfer_id=transfer_id), metadata=tenant.maker_auth()
        )
        assert read.transfer.status == transfers_pb.TRANSFER_STATUS_EXPIRED
    assert (await ledger.balance(payer, org=tenant.org)).available.amount_minor == 10_000
    expired = await _error(tenant.approve(swept.transfer_id))
    assert expired.reason == "HOLD_NOT_PENDING"


async def test_concurrent_approve_and_reject_exactly_one_wins(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair()
    held = await tenant.make(payer, payee, 4_000)
    calls = [tenant.approve(held.transfer_id) for _ in range(4)] + [tenant.reject(held.transfer_id) for _ in range(4)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert {loss.reason for loss in losses} == {"HOLD_NOT_PENDING"}
    balance = await ledger.balance(payer, org=tenant.org)
    assert balance.pending_debits_minor == 0
    assert balance.posted_debits_minor in (0, 4_000)


async def test_pending_list_pages_and_excludes_own(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair(100_000)
    made = [(await tenant.make(payer, payee, 2_000 + i)).transfer_id for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await ledger.stub.ListPendingApprovals(
            pb.ListPendingApprovalsRequest(page_size=2, page_token=token, account_id=payer),
            metadata=tenant.approver_auth(),
        )
        assert len(page.transfers) <= 2
        seen += [t.transfer_id for t in page.transfers]
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    own = await ledger.stub.ListPendingApprovals(
        pb.ListPendingApprovalsRequest(exclude_own=True), metadata=tenant.maker_auth()
    )
    assert list(own.transfers) == []
    await tenant.approve(made[0])
    rest = await ledger.stub.ListPendingApprovals(pb.ListPendingApprovalsRequest(), metadata=tenant.approver_auth())
    assert [t.transfer_id for t in rest.transfers] == made[1:]


async def test_invoice_payment_waits_for_approval(ledger: LedgerHarness) -> None:
    tenant = Tenant(ledger)
    await tenant.set_policy()
    payer, payee = await tenant.funded_pair()
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    create = invoices_pb.CreateInvoiceRequest(
        invoice_id=str(uuid.uuid4()), payee_account_id=payee, amount=_eur(6_000), reference="INV-77"
    )
    create.due_at.FromDatetime(due)
    invoice = (await ledger.stub.CreateInvoice(create, metadata=tenant.maker_auth())).invoice

    def pay() -> Any:
        return ledger.stub.PayInvoice(
            invoices_pb.PayInvoiceRequest(
                transfer_id=str(uuid.uuid4()), invoice_id=invoice.invoice_id, debit_account_id=payer
            ),
            metadata=tenant.maker_auth(),
        )

    paying = await pay()
    assert paying.transfer.status == transfers_pb.TRANSFER_STATUS_AWAITING_APPROVAL
    assert paying.invoice.status == invoices_pb.INVOICE_STATUS_OPEN
    in_flight = await _error(pay())
    assert in_flight.reason == "INVOICE_NOT_PAYABLE"
    assert in_flight.metadata["status"] == "AWAITING_PAYMENT"
    await tenant.approve(paying.transfer.transfer_id)
    read = await ledger.stub.GetInvoice(
        invoices_pb.GetInvoiceRequest(invoice_id=invoice.invoice_id), metadata=tenant.maker_auth()
    )
    assert read.invoice.status == invoices_pb.INVOICE_STATUS_PAID
    assert read.invoice.paid_by_transfer_id == paying.transfer.transfer_id
