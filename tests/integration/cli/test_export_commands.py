"""walletctl's compliance exports against real auth, ledger, contacts and risk: a tenant whose customers' names,
emails and phone numbers the test knows moves money; the exported CSV and JSON Lines files are searched for any of
them and for every raw id (none found), pseudonyms are stable within an export and linkable only under one key
name, only auditors export, each export is audited once, and the audit trail is audited once by every service."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from tests.integration.auth.conftest import Tenant, bearer, login
from tests.integration.cli.conftest import Suite, walletctl_run
from wallet.auth.v1 import (
    auth_audit_pb2,
    auth_customers_pb2,
    auth_events_pb2,
    auth_identity_pb2,
    auth_members_pb2,
    auth_service_pb2_grpc,
)
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_access_log_pb2, contacts_contact_pb2, contacts_service_pb2_grpc
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_integrity_pb2, ledger_transfers_pb2
from wallet.risk.v1 import risk_complaints_pb2, risk_service_pb2_grpc

pytestmark = pytest.mark.integration

MEMBER_PASSWORD = "a long and unusual passphrase 7"
# The address the test's gRPC clients connect from, as the services see it.
TEST_CLIENT_IP = "127.0.0.1"
EXPORT_ID_PATTERN = re.compile(r"export ([0-9a-f-]{36})")
WALLET = ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET
# Customers the test knows: name, email local part, phone as typed, and the digits of the phone.
CUSTOMERS = (
    ("Zelda Quartermain", "zelda.quartermain", "+44 7911 123456", "447911123456", "GB"),
    ("Ynes Brightwater", "ynes.brightwater", "138 1234 5678", "8613812345678", "CN"),
)


@dataclass
class PopulatedTenant:
    tenant: Tenant
    auditor_token: str
    finance_token: str
    secrets: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    wallets: list[str] = field(default_factory=list)
    transfers: list[str] = field(default_factory=list)


async def member_token(suite: Suite, tenant: Tenant, role: int) -> str:
    member_id = str(uuid.uuid4())
    email = f"m-{member_id[:8]}@{tenant.slug}.example.com"
    invited = await suite.auth.stub.InviteMember(
        auth_members_pb2.InviteMemberRequest(member_id=member_id, email=email, display_name="Mia", roles=[role]),
        metadata=bearer(tenant.access_token),
    )
    await suite.auth.stub.AcceptInvitation(
        auth_members_pb2.AcceptInvitationRequest(
            invitation_token=invited.invitation.invitation_token, password=MEMBER_PASSWORD
        )
    )
    reply = await login(suite.auth.stub, tenant.slug, email, MEMBER_PASSWORD)
    return reply.tokens.access_token


async def populated_tenant(suite: Suite) -> PopulatedTenant:
    """Two customers with names, emails and phone numbers in auth and the vault, wallets in the ledger funded from a
    suspense account and paying each other with references that name them."""
    tenant = await suite.tenant()
    owner = bearer(tenant.access_token)
    populated = PopulatedTenant(
        tenant,
        await member_token(suite, tenant, auth_identity_pb2.ROLE_AUDITOR),
        await member_token(suite, tenant, auth_identity_pb2.ROLE_FINANCE),
    )
    populated.secrets += [tenant.organization_id, tenant.owner_id, tenant.owner_email]
    auth_stub: auth_service_pb2_grpc.AuthServiceStub = suite.auth.stub
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as ledger_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{suite.contacts.port}") as contacts_channel,
    ):
        ledger = suite.ledger_stub(ledger_channel)
        contacts = contacts_service_pb2_grpc.ContactsServiceStub(contacts_channel)
        for name, local, phone, digits, region in CUSTOMERS:
            customer_id = str(uuid.uuid4())
            email = f"{local}@{tenant.slug}.example.com"
            await auth_stub.CreateCustomer(
                auth_customers_pb2.CreateCustomerRequest(customer_id=customer_id, email=email, display_name=name),
                metadata=owner,
            )
            contact_id = str(uuid.uuid4())
            await contacts.StoreContact(
                contacts_contact_pb2.StoreContactRequest(
                    contact_id=contact_id,
                    customer_id=customer_id,
                    phone_number=phone,
                    region_hint=region,
                    purposes=[contacts_contact_pb2.PURPOSE_TRANSACTION_ALERTS],
                    consent_reference="consent-2026-001",
                    retention=Duration(seconds=365 * 24 * 3600),
                ),
                metadata=owner,
            )
            wallet = str(uuid.uuid4())
            await ledger.OpenAccount(
                ledger_accounts_pb2.OpenAccountRequest(
                    account_id=wallet, kind=WALLET, currency="EUR", customer_id=customer_id, label=f"wallet of {name}"
                ),
                metadata=owner,
            )
            populated.wallets.append(wallet)
            populated.customers.append(customer_id)
            populated.secrets += [name, *name.split(), email, local, digits, digits[-10:], phone, customer_id]
            populated.secrets += [contact_id, wallet]
        source = str(uuid.uuid4())
        await ledger.OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=source, kind=ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, currency="EUR"
            ),
            metadata=owner,
        )
        populated.secrets.append(source)
        moves = [(source, populated.wallets[0], 5_000), (source, populated.wallets[1], 5_000)]
        moves += [(populated.wallets[0], populated.wallets[1], amount) for amount in (101, 202, 303)]
        for debit, credit, amount in moves:
            transfer_id = str(uuid.uuid4())
            await ledger.CreateTransfer(
                ledger_transfers_pb2.CreateTransferRequest(
                    transfer_id=transfer_id,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=money_pb2.Money(currency="EUR", amount_minor=amount),
                    reference=f"to {CUSTOMERS[1][0]} <{CUSTOMERS[1][1]}@example.com>",
                ),
                metadata=owner,
            )
            populated.transfers.append(transfer_id)
            populated.secrets.append(transfer_id)
    return populated


def period_args() -> list[str]:
    now = dt.datetime.now(dt.UTC)
    return ["--from", (now - dt.timedelta(hours=1)).isoformat(), "--to", (now + dt.timedelta(hours=1)).isoformat()]


def assert_nothing_personal(text: str, secrets: list[str]) -> None:
    lowered = text.lower()
    for secret in secrets:
        assert secret.lower() not in lowered, f"{secret!r} found in the export"
        if len(secret) == 36 and secret.count("-") == 4:
            assert uuid.UUID(secret).hex not in lowered, f"{secret!r} (as hex) found in the export"


def file_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def names_in(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def read_rows(path: Path, export_format: str) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    if export_format == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [{key: str(value) for key, value in json.loads(line).items()} for line in text.splitlines()]


async def export_transactions(
    suite: Suite, populated: PopulatedTenant, out: Path, export_format: str, *extra: str
) -> tuple[str, list[dict[str, str]]]:
    args = ["export", "transactions", *period_args(), "--format", export_format, "--out", str(out), *extra]
    result = await walletctl_run(args, suite.environ(WALLETCTL_TOKEN=populated.auditor_token))
    assert result.exit_code == 0, result.stderr
    found = EXPORT_ID_PATTERN.search(result.stdout)
    assert found is not None, result.stdout
    assert_nothing_personal(file_text(out), populated.secrets)
    return found.group(1), read_rows(out, export_format)


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
async def test_exported_transactions_hold_no_personal_data_and_stable_pseudonyms(
    suite: Suite, tmp_path: Path, export_format: str
) -> None:
    populated = await populated_tenant(suite)
    out = tmp_path / f"transactions.{export_format}"
    export_id, rows = await export_transactions(suite, populated, out, export_format)
    assert [row["amount_minor"] for row in rows] == ["5000", "5000", "101", "202", "303"]
    assert {row["status"] for row in rows} == {"TRANSFER_STATUS_POSTED"}
    wallet_a, wallet_b = rows[0]["credit_account_pseudonym"], rows[1]["credit_account_pseudonym"]
    customer_a, customer_b = rows[0]["credit_customer_pseudonym"], rows[1]["credit_customer_pseudonym"]
    assert len({wallet_a, wallet_b, customer_a, customer_b, rows[0]["debit_account_pseudonym"]}) == 5
    for row in rows[2:]:
        assert (row["debit_account_pseudonym"], row["credit_account_pseudonym"]) == (wallet_a, wallet_b)
        assert (row["debit_customer_pseudonym"], row["credit_customer_pseudonym"]) == (customer_a, customer_b)
        assert row["debit_account_kind"] == "ACCOUNT_KIND_CUSTOMER_WALLET"
    assert rows[0]["debit_customer_pseudonym"] == ""
    assert len({row["transfer_pseudonym"] for row in rows}) == len(rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", row["transfer_pseudonym"]) for row in rows)
    assert names_in(tmp_path) == [out.name]

    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as channel:
        audited = await suite.ledger_stub(channel).ListAuditEvents(
            ledger_integrity_pb2.ListAuditEventsRequest(resource_id=export_id),
            metadata=bearer(populated.auditor_token),
        )
    assert [event.method for event in audited.audit_events] == ["ExportTransactions"]
    assert audited.audit_events[0].details["pseudonym_key_id"] == "(per-export)"


async def test_exports_link_only_under_the_same_key_name(suite: Suite, tmp_path: Path) -> None:
    populated = await populated_tenant(suite)
    _, fresh = await export_transactions(suite, populated, tmp_path / "a.csv", "csv")
    _, other = await export_transactions(suite, populated, tmp_path / "b.jsonl", "jsonl")
    _, named = await export_transactions(suite, populated, tmp_path / "c.csv", "csv", "--key-name", "quarterly")
    _, named_again = await export_transactions(
        suite, populated, tmp_path / "d.jsonl", "jsonl", "--key-name", "quarterly"
    )
    assert {r["transfer_pseudonym"] for r in fresh}.isdisjoint({r["transfer_pseudonym"] for r in other})
    assert {r["credit_account_pseudonym"] for r in fresh}.isdisjoint({r["credit_account_pseudonym"] for r in named})
    assert [r["transfer_pseudonym"] for r in named] == [r["transfer_pseudonym"] for r in named_again]
    assert [r["credit_customer_pseudonym"] for r in named] == [r["credit_customer_pseudonym"] for r in named_again]


async def test_only_auditors_export_and_a_refused_export_leaves_no_file(suite: Suite, tmp_path: Path) -> None:
    populated = await populated_tenant(suite)
    out = tmp_path / "refused.csv"
    result = await walletctl_run(
        ["export", "transactions", *period_args(), "--out", str(out)],
        suite.environ(WALLETCTL_TOKEN=populated.finance_token),
    )
    assert result.exit_code == 2
    assert "PERMISSION_DENIED" in result.stderr
    assert "Traceback" not in result.stderr
    assert names_in(tmp_path) == []
    unknown_key = await walletctl_run(
        ["export", "transactions", *period_args(), "--key-name", "annual", "--out", str(out)],
        suite.environ(WALLETCTL_TOKEN=populated.auditor_token),
    )
    assert unknown_key.exit_code == 2
    assert "pseudonym_key_id" in unknown_key.stderr
    assert names_in(tmp_path) == []
    backwards = await walletctl_run(
        ["export", "transactions", "--from", "2026-02-01", "--to", "2026-01-01", "--out", str(out)],
        suite.environ(WALLETCTL_TOKEN=populated.auditor_token),
    )
    assert backwards.exit_code == 2
    assert "--to must be after --from" in backwards.stderr


async def export_audit_trail(
    suite: Suite, populated: PopulatedTenant, out: Path, *extra: str
) -> tuple[str, str, list[dict[str, Any]]]:
    """Runs ``walletctl export audit-trail``; the export id, walletctl's summary line and the file's rows."""
    result = await walletctl_run(
        ["export", "audit-trail", *period_args(), "--out", str(out), *extra],
        suite.environ(WALLETCTL_TOKEN=populated.auditor_token),
    )
    assert result.exit_code == 0, result.stderr
    found = EXPORT_ID_PATTERN.search(result.stdout)
    assert found is not None, result.stdout
    return found.group(1), result.stdout, [json.loads(line) for line in file_text(out).splitlines()]


async def freeze_naming_a_customer(suite: Suite, populated: PopulatedTenant) -> str:
    """A ledger admin action whose typed reason names a customer, by phone and email; returns the reason."""
    name, local, phone, _, _ = CUSTOMERS[0]
    reason = f"{name} ({local}@example.com, {phone}) reported a stolen phone"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as channel:
        await suite.ledger_stub(channel).FreezeAccount(
            ledger_accounts_pb2.FreezeAccountRequest(
                account_id=populated.wallets[0],
                reason=reason,
                request_id=str(uuid.uuid4()),
            ),
            metadata=bearer(populated.tenant.access_token),
        )
    return reason


def customer_pseudonyms(records: list[dict[str, Any]]) -> list[str]:
    """The pseudonyms auth's PRINCIPAL_CREATED events give the populated tenant's customers, oldest first."""
    created = [
        row["record"]
        for row in reversed(records)
        if row["source"] == "auth.audit_events"
        and row["record"].get("event_type") == "AUTH_EVENT_TYPE_PRINCIPAL_CREATED"
        and row["record"].get("details", {}).get("principal_kind") == "PRINCIPAL_KIND_CUSTOMER"
    ]
    return [record["principal_id"] for record in created]


async def complain_for_a_customer(suite: Suite, populated: PopulatedTenant, customer_id: str) -> str:
    """A service complaint the owner opens for a customer, describing them by name and phone, then acknowledges."""
    name, _, phone, _, _ = CUSTOMERS[1]
    complaint_id = str(uuid.uuid4())
    owner = bearer(populated.tenant.access_token)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.risk.port}") as channel:
        risk = risk_service_pb2_grpc.RiskServiceStub(channel)
        await risk.OpenComplaint(
            risk_complaints_pb2.OpenComplaintRequest(
                complaint_id=complaint_id,
                customer_id=customer_id,
                category=risk_complaints_pb2.COMPLAINT_CATEGORY_SERVICE,
                description=f"{name} says the app shows {phone} as someone else's number",
            ),
            metadata=owner,
        )
        await risk.AcknowledgeComplaint(
            risk_complaints_pb2.AcknowledgeComplaintRequest(complaint_id=complaint_id, request_id=str(uuid.uuid4())),
            metadata=owner,
        )
    return complaint_id


async def test_the_audit_trail_holds_no_personal_data_and_stable_pseudonyms(suite: Suite, tmp_path: Path) -> None:
    populated = await populated_tenant(suite)
    reason = await freeze_naming_a_customer(suite, populated)
    complaint_id = await complain_for_a_customer(suite, populated, populated.customers[1])
    populated.secrets.append(complaint_id)
    _, _, records = await export_audit_trail(suite, populated, tmp_path / "trail.jsonl")
    text = file_text(tmp_path / "trail.jsonl")
    # Staff ids stay (a review needs to know who acted); everything the test knows of customers, and the test
    # client's address, must not be found.
    staff = {populated.tenant.owner_id}
    assert_nothing_personal(text, [s for s in populated.secrets if s not in staff] + [TEST_CLIENT_IP])
    assert populated.tenant.owner_id in text

    customers = customer_pseudonyms(records)
    assert len(customers) == len(CUSTOMERS)
    assert all(re.fullmatch(r"[0-9a-f]{64}", pseudonym) for pseudonym in customers)
    freezes = [r["record"] for r in records if r["record"].get("method", "").endswith("FreezeAccount")]
    assert len(freezes) == 1
    assert freezes[0]["actor_principal_id"] == populated.tenant.owner_id
    assert freezes[0]["details"] == {"reason_chars": len(reason)}
    steps = [r["record"] for r in records if r["source"] == "risk.complaint_steps"]
    assert [step["action"] for step in steps] == ["acknowledged", "opened"]
    assert {step["actor_principal_id"] for step in steps} == {populated.tenant.owner_id}
    assert steps[0]["complaint_id"] == steps[1]["complaint_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", steps[0]["complaint_id"])
    assert all(step["category"] == "COMPLAINT_CATEGORY_SERVICE" for step in steps)
    addresses = [r["record"]["source_ip"] for r in records if r["record"].get("source_ip")]
    assert addresses, "no sign-in carried an address"
    assert all(re.fullmatch(r"[0-9.]+/24|[0-9a-f:]+/48", address) for address in addresses), addresses

    # Stable within an export: the same customer has the same pseudonym in every record of it; unlinkable across.
    _, _, again = await export_audit_trail(suite, populated, tmp_path / "again.jsonl")
    assert set(customer_pseudonyms(again)).isdisjoint(customers)
    key_file = tmp_path / "linking.key"
    key_file.write_text("ab" * 32, encoding="utf-8")
    _, summary, linked = await export_audit_trail(
        suite, populated, tmp_path / "linked.jsonl", "--pseudonym-key-file", str(key_file)
    )
    _, _, linked_again = await export_audit_trail(
        suite, populated, tmp_path / "linked-again.jsonl", "--pseudonym-key-file", str(key_file)
    )
    assert "the key file's key" in summary
    assert customer_pseudonyms(linked) == customer_pseudonyms(linked_again)
    assert set(customer_pseudonyms(linked)).isdisjoint(customers)
    assert "ab" * 32 not in file_text(tmp_path / "linked.jsonl")  # the key itself (4 hex digits could be chance)


async def test_the_audit_trail_export_is_audited_once_by_each_service(suite: Suite, tmp_path: Path) -> None:
    populated = await populated_tenant(suite)
    out = tmp_path / "audit-trail.jsonl"
    auditor = bearer(populated.auditor_token)
    export_id, stdout, records = await export_audit_trail(suite, populated, out)
    sources = {record["source"] for record in records}
    assert {"auth.audit_events", "ledger.admin_actions", "contacts.access_log"} <= sources
    assert all(set(record) == {"source", "record"} for record in records)
    assert "risk.decisions" in stdout
    assert "risk.complaint_steps" in stdout
    assert "a per-export key" in stdout

    exported = auth_events_pb2.AUTH_EVENT_TYPE_AUDIT_EVENTS_EXPORTED
    auth_events = await suite.auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=exported), metadata=auditor
    )
    assert [event.details["export_id"] for event in auth_events.audit_events] == [export_id]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as ledger_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{suite.contacts.port}") as contacts_channel,
    ):
        ledger_events = await suite.ledger_stub(ledger_channel).ListAuditEvents(
            ledger_integrity_pb2.ListAuditEventsRequest(resource_id=export_id), metadata=auditor
        )
        access = await contacts_service_pb2_grpc.ContactsServiceStub(contacts_channel).ListAccessLog(
            contacts_access_log_pb2.ListAccessLogRequest(
                action=contacts_access_log_pb2.ACCESS_ACTION_ACCESS_LOG_EXPORT
            ),
            metadata=auditor,
        )
    assert [event.method for event in ledger_events.audit_events] == ["ListAuditEvents"]
    assert [entry.justification.split(";")[0] for entry in access.entries] == [f"export_id={export_id}"]
    assert access.entries[0].customer_id == str(uuid.UUID(int=0))
    risk_records = await suite.risk.runtime.pool.fetch(
        "SELECT action FROM audit_events WHERE organization_id = $1 AND subject = $2",
        uuid.UUID(populated.tenant.organization_id),
        f"exports/{export_id}",
    )
    assert sorted(record["action"] for record in risk_records) == [
        "assessments_exported",
        "complaint_events_exported",
    ]
