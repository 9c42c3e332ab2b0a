"""ReverseTransfer through the real server: full and partial reversals, over-reversal refused with nothing written,
reversal of a reversal, holds refused, idempotent replay and key reuse, many concurrent partial reversals of one
transfer, the statement link, the event and the audit, other tenants and frozen accounts."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from services.kit.outbox import decode_entry
from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
from wallet.ledger.v1 import ledger_events_pb2 as events_pb
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb
from wallet.ledger.v1 import ledger_statements_pb2 as statements_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as pb

pytestmark = pytest.mark.integration

CONCURRENT_REVERSALS = 24
# Tables a refused reversal must leave untouched.
WRITTEN_TABLES = ("transfers", "postings", "chain_entries", "transfer_reversals", "audit_events", "outbox")


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


def _reversal(
    original: str,
    amount_minor: int | None = None,
    *,
    reason: int = pb.REVERSAL_REASON_CUSTOMER_REQUEST,
    **fields: str,
) -> pb.ReverseTransferRequest:
    request = pb.ReverseTransferRequest(
        transfer_id=str(uuid.uuid4()), original_transfer_id=original, reason=reason, **fields
    )
    if amount_minor is not None:
        request.amount.CopyFrom(money_pb2.Money(currency="EUR", amount_minor=amount_minor))
    return request


async def _paid(ledger: LedgerHarness, amount_minor: int = 1_000, *, org: str | None = None) -> tuple[str, str, str]:
    """A payer who paid a payee ``amount_minor``: (payer, payee, transfer id)."""
    payer, payee = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(payer, amount_minor, org=org)
    paid = await ledger.transfer(payer, payee, amount_minor, org=org)
    return payer, payee, paid.transfer_id


async def _get(ledger: LedgerHarness, transfer_id: str) -> pb.Transfer:
    response = await ledger.stub.GetTransfer(pb.GetTransferRequest(transfer_id=transfer_id), metadata=ledger.auth())
    return response.transfer


async def _row_counts(ledger: LedgerHarness) -> dict[str, int]:
    async with ledger.app.runtime.pool.acquire() as connection:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 -- constant names
            for table in WRITTEN_TABLES
        }


async def _postings_of(ledger: LedgerHarness, transfer_id: str) -> list[tuple[str, int, int]]:
    async with ledger.app.runtime.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT account_id, side, amount_minor FROM postings WHERE transfer_id = $1 ORDER BY side", transfer_id
        )
    return [(str(r["account_id"]), r["side"], r["amount_minor"]) for r in rows]


async def test_full_reversal_gives_everything_back_and_links_to_the_original(ledger: LedgerHarness) -> None:
    payer, payee, original = await _paid(ledger, 1_000)
    postings_before = await _postings_of(ledger, original)
    response = await ledger.stub.ReverseTransfer(_reversal(original, reference="refund-7"), metadata=ledger.auth())
    reversal = response.transfer
    assert reversal.kind == pb.TRANSFER_KIND_REVERSAL
    assert reversal.status == pb.TRANSFER_STATUS_POSTED
    assert reversal.reversal_of_transfer_id == original
    assert (reversal.debit_account_id, reversal.credit_account_id) == (payee, payer)
    assert reversal.amount.amount_minor == 1_000
    assert reversal.reference == "refund-7"
    assert reversal.sequence > 0
    assert response.original_transfer.transfer_id == original
    assert response.original_transfer.reversed_amount.amount_minor == 1_000
    assert (await ledger.balance(payer)).available.amount_minor == 1_000
    assert (await ledger.balance(payee)).available.amount_minor == 0
    # Posted history is never edited: the original still shows what it posted, with its postings unchanged.
    shown = await _get(ledger, original)
    assert shown.posted_amount.amount_minor == 1_000
    assert shown.reversed_amount.amount_minor == 1_000
    assert shown.status == pb.TRANSFER_STATUS_POSTED
    assert await _postings_of(ledger, original) == postings_before
    listed = await ledger.stub.ListTransfers(pb.ListTransfersRequest(account_id=payee), metadata=ledger.auth())
    by_id = {t.transfer_id: t for t in listed.transfers}
    assert by_id[original].reversed_amount.amount_minor == 1_000
    assert by_id[reversal.transfer_id].reversal_of_transfer_id == original
    details = await _error(ledger.stub.ReverseTransfer(_reversal(original), metadata=ledger.auth()))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REVERSAL_EXCEEDS_ORIGINAL")
    assert details.metadata["remaining_minor"] == "0"


async def test_partial_reversals_never_exceed_what_is_left_and_a_refusal_writes_nothing(
    ledger: LedgerHarness,
) -> None:
    payer, payee, original = await _paid(ledger, 1_000)
    first = await ledger.stub.ReverseTransfer(_reversal(original, 300), metadata=ledger.auth())
    assert first.original_transfer.reversed_amount.amount_minor == 300
    second = await ledger.stub.ReverseTransfer(_reversal(original, 200), metadata=ledger.auth())
    assert second.original_transfer.reversed_amount.amount_minor == 500
    before = await _row_counts(ledger)
    details = await _error(ledger.stub.ReverseTransfer(_reversal(original, 501), metadata=ledger.auth()))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REVERSAL_EXCEEDS_ORIGINAL")
    assert details.metadata == {"transfer_id": original, "remaining_minor": "500"}
    assert await _row_counts(ledger) == before
    assert (await ledger.balance(payer)).available.amount_minor == 500
    # Unset amount: everything left.
    rest = await ledger.stub.ReverseTransfer(_reversal(original), metadata=ledger.auth())
    assert rest.transfer.amount.amount_minor == 500
    assert rest.original_transfer.reversed_amount.amount_minor == 1_000
    assert (await ledger.balance(payee)).available.amount_minor == 0


async def test_a_reversal_can_be_reversed_up_to_its_own_amount(ledger: LedgerHarness) -> None:
    payer, payee, original = await _paid(ledger, 1_000)
    reversal = (await ledger.stub.ReverseTransfer(_reversal(original, 400), metadata=ledger.auth())).transfer
    details = await _error(
        ledger.stub.ReverseTransfer(
            _reversal(reversal.transfer_id, 401, reason=pb.REVERSAL_REASON_ERROR_CORRECTION), metadata=ledger.auth()
        )
    )
    assert details.reason == "REVERSAL_EXCEEDS_ORIGINAL"
    assert details.metadata["remaining_minor"] == "400"
    again = await ledger.stub.ReverseTransfer(
        _reversal(reversal.transfer_id, reason=pb.REVERSAL_REASON_ERROR_CORRECTION), metadata=ledger.auth()
    )
    assert (again.transfer.debit_account_id, again.transfer.credit_account_id) == (payer, payee)
    assert again.transfer.amount.amount_minor == 400
    assert again.original_transfer.reversed_amount.amount_minor == 400
    # Reversing the reversal does not give the original's reversed amount back: 600 are still left of it.
    assert (await _get(ledger, original)).reversed_amount.amount_minor == 400
    assert (await ledger.balance(payee)).available.amount_minor == 1_000
    rest = await ledger.stub.ReverseTransfer(_reversal(original), metadata=ledger.auth())
    assert rest.transfer.amount.amount_minor == 600


async def test_only_posted_transfers_can_be_reversed(ledger: LedgerHarness) -> None:
    payer, payee = await ledger.open(), await ledger.open()
    await ledger.fund(payer, 1_000)
    hold = await ledger.transfer(payer, payee, 300, pending=True)
    details = await _error(ledger.stub.ReverseTransfer(_reversal(hold.transfer_id), metadata=ledger.auth()))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "TRANSFER_NOT_POSTED")
    assert details.metadata["status"] == "PENDING"
    await ledger.stub.VoidPendingTransfer(
        pb.VoidPendingTransferRequest(transfer_id=hold.transfer_id, request_id=str(uuid.uuid4())),
        metadata=ledger.auth(),
    )
    details = await _error(ledger.stub.ReverseTransfer(_reversal(hold.transfer_id, 100), metadata=ledger.auth()))
    assert details.reason == "TRANSFER_NOT_POSTED"
    assert details.metadata["status"] == "VOIDED"
    # A hold posted in part can be reversed up to what it posted.
    partial = await ledger.transfer(payer, payee, 300, pending=True)
    await ledger.stub.PostPendingTransfer(
        pb.PostPendingTransferRequest(
            transfer_id=partial.transfer_id,
            request_id=str(uuid.uuid4()),
            amount=money_pb2.Money(currency="EUR", amount_minor=120),
        ),
        metadata=ledger.auth(),
    )
    details = await _error(ledger.stub.ReverseTransfer(_reversal(partial.transfer_id, 121), metadata=ledger.auth()))
    assert details.metadata["remaining_minor"] == "120"
    full = await ledger.stub.ReverseTransfer(_reversal(partial.transfer_id), metadata=ledger.auth())
    assert full.transfer.amount.amount_minor == 120


async def test_replay_returns_the_reversal_and_changed_content_names_the_field(ledger: LedgerHarness) -> None:
    _, _, original = await _paid(ledger, 1_000)
    complaint = str(uuid.uuid4())
    request = _reversal(original, 250, reason=pb.REVERSAL_REASON_DISPUTE_UPHELD, complaint_id=complaint)
    first = await ledger.stub.ReverseTransfer(request, metadata=ledger.auth())
    # The reply was lost (a crash between commit and reply looks the same to the client): the retry replays.
    again = await ledger.stub.ReverseTransfer(request, metadata=ledger.auth())
    assert again.transfer == first.transfer
    assert again.original_transfer.reversed_amount.amount_minor == 250
    assert (await _get(ledger, original)).reversed_amount.amount_minor == 250
    changes: list[tuple[str, pb.ReverseTransferRequest]] = []
    for field, change in (
        ("amount.amount_minor", {"amount": money_pb2.Money(currency="EUR", amount_minor=251)}),
        ("reason", {"reason": pb.REVERSAL_REASON_FRAUD}),
        ("complaint_id", {"complaint_id": str(uuid.uuid4())}),
        ("reference", {"reference": "other"}),
    ):
        changed = pb.ReverseTransferRequest()
        changed.CopyFrom(request)
        for name, value in change.items():
            if isinstance(value, money_pb2.Money):
                changed.amount.CopyFrom(value)
            else:
                setattr(changed, name, value)
        changes.append((field, changed))
    _, _, other_original = await _paid(ledger, 500)
    moved = pb.ReverseTransferRequest()
    moved.CopyFrom(request)
    moved.original_transfer_id = other_original
    changes.append(("original_transfer_id", moved))
    unset = pb.ReverseTransferRequest()
    unset.CopyFrom(request)
    unset.ClearField("amount")
    changes.append(("amount.amount_minor", unset))
    for field, changed in changes:
        details = await _error(ledger.stub.ReverseTransfer(changed, metadata=ledger.auth()))
        assert (details.code, details.reason) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
        assert details.metadata["field"] == field
    # A transfer id already used by an ordinary transfer is not a reversal's.
    _, _, plain = await _paid(ledger, 100)
    details = await _error(
        ledger.stub.ReverseTransfer(
            pb.ReverseTransferRequest(
                transfer_id=plain, original_transfer_id=original, reason=pb.REVERSAL_REASON_CUSTOMER_REQUEST
            ),
            metadata=ledger.auth(),
        )
    )
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await _get(ledger, original)).reversed_amount.amount_minor == 250


async def test_concurrent_partial_reversals_never_exceed_the_original(ledger: LedgerHarness) -> None:
    amount_minor, piece_minor = 1_000, 70  # 14 pieces fit (980), the other 10 must be refused
    payer, payee, original = await _paid(ledger, amount_minor)
    requests = [_reversal(original, piece_minor) for _ in range(CONCURRENT_REVERSALS)]
    results = await asyncio.gather(
        *(ledger.stub.ReverseTransfer(r, metadata=ledger.auth()) for r in requests), return_exceptions=True
    )
    succeeded = [r for r in results if isinstance(r, pb.ReverseTransferResponse)]
    refused = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(succeeded) + len(refused) == CONCURRENT_REVERSALS
    assert len(succeeded) == amount_minor // piece_minor
    assert {(d.code, d.reason) for d in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "REVERSAL_EXCEEDS_ORIGINAL")
    }
    reversed_minor = len(succeeded) * piece_minor
    assert (await _get(ledger, original)).reversed_amount.amount_minor == reversed_minor
    assert (await ledger.balance(payer)).available.amount_minor == reversed_minor
    assert (await ledger.balance(payee)).available.amount_minor == amount_minor - reversed_minor
    # The unset amount races too: of several "everything left" calls exactly one gets the remaining 20.
    rest = await asyncio.gather(
        *(ledger.stub.ReverseTransfer(_reversal(original), metadata=ledger.auth()) for _ in range(4)),
        return_exceptions=True,
    )
    done = [r for r in rest if isinstance(r, pb.ReverseTransferResponse)]
    assert [r.transfer.amount.amount_minor for r in done] == [amount_minor - reversed_minor]
    assert (await _get(ledger, original)).reversed_amount.amount_minor == amount_minor
    report = await ledger.stub.CheckInvariants(integrity_pb.CheckInvariantsRequest(), metadata=ledger.auth())
    assert report.intact, list(report.violations)


async def test_statement_event_and_audit_show_the_link(ledger: LedgerHarness) -> None:
    payer, _, original = await _paid(ledger, 800)
    complaint = str(uuid.uuid4())
    response = await ledger.stub.ReverseTransfer(
        _reversal(original, 300, reason=pb.REVERSAL_REASON_DISPUTE_UPHELD, complaint_id=complaint),
        metadata=ledger.auth(sub="finance-member"),
    )
    reversal = response.transfer
    statement = await ledger.stub.GetStatement(
        statements_pb.GetStatementRequest(account_id=payer), metadata=ledger.auth()
    )
    lines = {line.transfer_id: line for line in statement.lines}
    assert lines[reversal.transfer_id].reversal_of_transfer_id == original
    assert lines[reversal.transfer_id].kind == pb.TRANSFER_KIND_REVERSAL
    assert lines[reversal.transfer_id].side == statements_pb.ENTRY_SIDE_CREDIT
    assert lines[original].reversal_of_transfer_id == ""

    async with ledger.app.runtime.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT envelope FROM outbox WHERE partition_key = $1 ORDER BY id", reversal.debit_account_id
        )
    posted: list[events_pb.TransferPosted] = []
    for row in rows:
        envelope = decode_entry({b"event": bytes(row["envelope"])})
        if envelope.event_type == events_pb.TransferPosted.DESCRIPTOR.full_name:
            event = events_pb.TransferPosted()
            envelope.payload.Unpack(event)
            posted.append(event)
    mine = [e for e in posted if e.transfer.transfer_id == reversal.transfer_id]
    assert len(mine) == 1
    assert mine[0].transfer.reversal_of_transfer_id == original
    assert mine[0].transfer.kind == pb.TRANSFER_KIND_REVERSAL
    assert mine[0].sequence == reversal.sequence

    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id=original), metadata=ledger.auth()
    )
    assert len(audit.audit_events) == 1
    event = audit.audit_events[0]
    assert event.method == "ReverseTransfer"
    assert event.actor_principal_id == "finance-member"
    assert event.details["reason"] == "DISPUTE_UPHELD"
    assert event.details["complaint_id"] == complaint
    assert event.details["reversal_transfer_id"] == reversal.transfer_id
    assert event.details["amount_minor"] == "300"
    verdict = await ledger.stub.VerifyChain(integrity_pb.VerifyChainRequest(), metadata=ledger.auth())
    assert verdict.intact


async def test_other_tenants_transfer_is_not_found_and_frozen_accounts_refuse(ledger: LedgerHarness) -> None:
    other_org = str(uuid.uuid4())
    _, _, foreign = await _paid(ledger, 500, org=other_org)
    details = await _error(ledger.stub.ReverseTransfer(_reversal(foreign), metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert (await _error(ledger.stub.ReverseTransfer(_reversal(str(uuid.uuid4())), metadata=ledger.auth()))).code == (
        grpc.StatusCode.NOT_FOUND
    )

    _, payee, original = await _paid(ledger, 500)
    await ledger.stub.FreezeAccount(
        accounts_pb.FreezeAccountRequest(account_id=payee, reason="investigation", request_id=str(uuid.uuid4())),
        metadata=ledger.auth(),
    )
    before = await _row_counts(ledger)
    details = await _error(ledger.stub.ReverseTransfer(_reversal(original, 100), metadata=ledger.auth()))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_FROZEN")
    assert details.metadata["account_id"] == payee
    assert await _row_counts(ledger) == before
    assert (await _get(ledger, original)).reversed_amount.amount_minor == 0


async def test_reversal_follows_the_balance_rules(ledger: LedgerHarness) -> None:
    """The payee already spent the money: the reversal debits it like any transfer and is refused."""
    _, payee, original = await _paid(ledger, 500)
    elsewhere = await ledger.open()
    await ledger.transfer(payee, elsewhere, 450)
    details = await _error(ledger.stub.ReverseTransfer(_reversal(original), metadata=ledger.auth()))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    assert details.metadata["available_minor"] == "50"
    assert (await ledger.stub.ReverseTransfer(_reversal(original, 50), metadata=ledger.auth())).transfer.status == (
        pb.TRANSFER_STATUS_POSTED
    )


async def test_bad_input_is_invalid_argument_with_every_violation(ledger: LedgerHarness) -> None:
    _, _, original = await _paid(ledger, 100)
    request = pb.ReverseTransferRequest(
        transfer_id="nope",
        original_transfer_id=original,
        amount=money_pb2.Money(currency="EUR", amount_minor=-5),
        complaint_id="not-a-uuid",
        reference="x" * 200,
    )
    details = await _error(ledger.stub.ReverseTransfer(request, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details.field_violations}
    assert fields == {"transfer_id", "amount.amount_minor", "complaint_id", "reason", "reference"}
    wrong_currency = _reversal(original)
    wrong_currency.amount.CopyFrom(money_pb2.Money(currency="USD", amount_minor=10))
    details = await _error(ledger.stub.ReverseTransfer(wrong_currency, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.field_violations] == ["amount.currency"]
