"""ExportTransactions against a real ledger: pages of pseudonyms stable within an export, linkable across exports
only under the same key name, no raw id anywhere in the answer, auditors only, audited once, one export id per
export, page tokens bound to the export, its filters and its tenant."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_transfers_pb2
from wallet.ledger.v1 import ledger_integrity_pb2 as pb

pytestmark = pytest.mark.integration

WALLET = ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET


def stamp(moment: dt.datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


async def _error(call: Any) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return ErrorDetails.from_rpc_error(caught.value)


def export_request(export_id: str, **fields: Any) -> pb.ExportTransactionsRequest:
    now = dt.datetime.now(dt.UTC)
    fields.setdefault("start_time", stamp(now - dt.timedelta(hours=1)))
    fields.setdefault("end_time", stamp(now + dt.timedelta(hours=1)))
    return pb.ExportTransactionsRequest(export_id=export_id, **fields)


async def tenant_with_customers(ledger: LedgerHarness) -> tuple[str, list[str], list[str], list[str]]:
    """A tenant with two customers' wallets funded from a suspense account and paying each other; returns the org,
    the customer ids, the account ids and the transfer ids."""
    org = str(uuid.uuid4())
    customers = [str(uuid.uuid4()), str(uuid.uuid4())]
    wallets = [await ledger.open(kind=WALLET, customer_id=c, org=org) for c in customers]
    accounts = list(wallets)
    transfers = []
    for wallet in wallets:
        source = await ledger.open(kind=ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, org=org)
        accounts.append(source)
        transfers.append((await ledger.transfer(source, wallet, 1_000, org=org)).transfer_id)
    for amount in (10, 20, 30):
        transfers.append((await ledger.transfer(wallets[0], wallets[1], amount, org=org)).transfer_id)
    return org, customers, accounts, transfers


async def read_export(
    ledger: LedgerHarness, org: str, export_id: str, *, page_size: int = 2, **fields: Any
) -> list[pb.ExportedTransfer]:
    auditor = ledger.auth(org=org, roles=["auditor"])
    period = export_request(export_id)
    fields.setdefault("start_time", period.start_time)
    fields.setdefault("end_time", period.end_time)
    rows: list[pb.ExportedTransfer] = []
    token = ""
    for _ in range(100):
        reply = await ledger.stub.ExportTransactions(
            export_request(export_id, page_size=page_size, page_token=token, **fields), metadata=auditor
        )
        rows.extend(reply.transfers)
        token = reply.next_page_token
        if not token:
            return rows
    raise AssertionError("the export never ended")


async def test_an_export_pages_pseudonyms_and_no_raw_id(ledger: LedgerHarness) -> None:
    org, customers, accounts, transfers = await tenant_with_customers(ledger)
    export_id = str(uuid.uuid4())
    rows = await read_export(ledger, org, export_id)
    assert len(rows) == len(transfers)
    answer = b"".join(row.SerializeToString() for row in rows)
    for identifier in [org, *customers, *accounts, *transfers]:
        assert identifier.encode() not in answer
        assert uuid.UUID(identifier).bytes not in answer
        assert uuid.UUID(identifier).hex.encode() not in answer
    assert len({row.transfer_pseudonym for row in rows}) == len(transfers)
    payments = rows[2:]
    assert [row.amount.amount_minor for row in payments] == [10, 20, 30]
    assert len({row.debit_account_pseudonym for row in payments}) == 1
    assert len({row.debit_customer_pseudonym for row in payments}) == 1
    assert payments[0].debit_customer_pseudonym != payments[0].credit_customer_pseudonym
    assert rows[0].debit_customer_pseudonym == ""
    assert rows[0].debit_account_kind == ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE
    assert payments[0].debit_account_kind == WALLET
    assert rows[1].credit_account_pseudonym == payments[0].credit_account_pseudonym
    assert all(row.status == 2 and row.HasField("posted_at") for row in rows)


async def test_exports_link_only_under_the_same_key_name(ledger: LedgerHarness) -> None:
    org, _, _, _ = await tenant_with_customers(ledger)
    first = await read_export(ledger, org, str(uuid.uuid4()))
    again = await read_export(ledger, org, str(uuid.uuid4()))
    named = await read_export(ledger, org, str(uuid.uuid4()), pseudonym_key_id="quarterly")
    named_again = await read_export(ledger, org, str(uuid.uuid4()), page_size=500, pseudonym_key_id="quarterly")
    assert {r.transfer_pseudonym for r in first}.isdisjoint({r.transfer_pseudonym for r in again})
    assert {r.debit_account_pseudonym for r in first}.isdisjoint({r.debit_account_pseudonym for r in again})
    assert {r.transfer_pseudonym for r in named}.isdisjoint({r.transfer_pseudonym for r in first})
    assert [r.transfer_pseudonym for r in named] == [r.transfer_pseudonym for r in named_again]
    assert [r.debit_customer_pseudonym for r in named] == [r.debit_customer_pseudonym for r in named_again]


async def test_only_auditors_export_and_each_export_is_audited_once(ledger: LedgerHarness) -> None:
    org, _, _, _ = await tenant_with_customers(ledger)
    export_id = str(uuid.uuid4())
    for role in ("finance", "admin", "support", "risk_analyst", "approver"):
        denied = await _error(
            ledger.stub.ExportTransactions(export_request(export_id), metadata=ledger.auth(org=org, roles=[role]))
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED, role
    customer = await _error(
        ledger.stub.ExportTransactions(
            export_request(export_id), metadata=ledger.customer_auth(str(uuid.uuid4()), org)
        )
    )
    assert customer.code == grpc.StatusCode.PERMISSION_DENIED
    request = export_request(export_id, page_size=2)
    auditor = ledger.auth(org=org, roles=["auditor"], sub="auditor-ada")
    first = await ledger.stub.ExportTransactions(request, metadata=auditor)
    retried = await ledger.stub.ExportTransactions(request, metadata=auditor)
    assert [r.transfer_pseudonym for r in retried.transfers] == [r.transfer_pseudonym for r in first.transfers]
    await ledger.stub.ExportTransactions(
        export_request(
            export_id,
            page_size=2,
            start_time=request.start_time,
            end_time=request.end_time,
            page_token=first.next_page_token,
        ),
        metadata=auditor,
    )
    audited = await ledger.stub.ListAuditEvents(
        pb.ListAuditEventsRequest(resource_id=export_id), metadata=ledger.auth(org=org, roles=["auditor"])
    )
    assert len(audited.audit_events) == 1
    event = audited.audit_events[0]
    assert event.method == "ExportTransactions"
    assert event.actor_principal_id == "auditor-ada"
    assert event.details["pseudonym_key_id"] == "(per-export)"
    assert event.details["start_time"] == request.start_time.ToDatetime(tzinfo=dt.UTC).isoformat()
    assert "key" not in " ".join(k for k in event.details if k != "pseudonym_key_id")


async def test_one_export_id_is_one_export(ledger: LedgerHarness) -> None:
    org, _, _, _ = await tenant_with_customers(ledger)
    export_id = str(uuid.uuid4())
    auditor = ledger.auth(org=org, roles=["auditor"])
    await ledger.stub.ExportTransactions(export_request(export_id), metadata=auditor)
    reused = await _error(
        ledger.stub.ExportTransactions(export_request(export_id, pseudonym_key_id="quarterly"), metadata=auditor)
    )
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_page_tokens_are_bound_to_the_export_its_filters_and_tenant(ledger: LedgerHarness) -> None:
    org, _, _, _ = await tenant_with_customers(ledger)
    export_id = str(uuid.uuid4())
    auditor = ledger.auth(org=org, roles=["auditor"])
    request = export_request(export_id, page_size=1)
    token = (await ledger.stub.ExportTransactions(request, metadata=auditor)).next_page_token
    assert token
    later = stamp(request.start_time.ToDatetime(tzinfo=dt.UTC) + dt.timedelta(seconds=1))
    variants = [
        pb.ExportTransactionsRequest(export_id=export_id, start_time=later, end_time=request.end_time),
        pb.ExportTransactionsRequest(
            export_id=export_id,
            start_time=request.start_time,
            end_time=request.end_time,
            pseudonym_key_id="quarterly",
        ),
        pb.ExportTransactionsRequest(
            export_id=str(uuid.uuid4()), start_time=request.start_time, end_time=request.end_time
        ),
    ]
    for variant in variants:
        variant.page_token = token
        refused = await _error(ledger.stub.ExportTransactions(variant, metadata=auditor))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.reason == "PAGE_TOKEN_INVALID"
    same = pb.ExportTransactionsRequest()
    same.CopyFrom(request)
    same.page_token = token
    elsewhere = await _error(
        ledger.stub.ExportTransactions(same, metadata=ledger.auth(org=str(uuid.uuid4()), roles=["auditor"]))
    )
    assert elsewhere.reason == "PAGE_TOKEN_INVALID"


async def test_bad_export_requests_are_invalid(ledger: LedgerHarness) -> None:
    auditor = ledger.auth(roles=["auditor"])
    missing = await _error(ledger.stub.ExportTransactions(pb.ExportTransactionsRequest(), metadata=auditor))
    assert missing.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in missing.field_violations} == {"export_id", "start_time", "end_time"}
    unknown = await _error(
        ledger.stub.ExportTransactions(export_request(str(uuid.uuid4()), pseudonym_key_id="annual"), metadata=auditor)
    )
    assert [v.field for v in unknown.field_violations] == ["pseudonym_key_id"]


async def test_a_reversal_names_its_original_by_pseudonym(ledger: LedgerHarness) -> None:
    org, _, _, transfers = await tenant_with_customers(ledger)
    reversal_id = str(uuid.uuid4())
    await ledger.stub.ReverseTransfer(
        ledger_transfers_pb2.ReverseTransferRequest(
            transfer_id=reversal_id,
            original_transfer_id=transfers[-1],
            amount=money_pb2.Money(currency="EUR", amount_minor=10),
            reason=ledger_transfers_pb2.REVERSAL_REASON_CUSTOMER_REQUEST,
        ),
        metadata=ledger.auth(org=org),
    )
    rows = await read_export(ledger, org, str(uuid.uuid4()))
    assert rows[-1].kind == ledger_transfers_pb2.TRANSFER_KIND_REVERSAL
    assert rows[-1].reversal_of_transfer_pseudonym == rows[-2].transfer_pseudonym
    assert rows[-1].amount.amount_minor == 10
    assert all(row.reversal_of_transfer_pseudonym == "" for row in rows[:-1])
    assert reversal_id.encode() not in rows[-1].SerializeToString()
