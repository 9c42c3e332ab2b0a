"""Issue 12's sweep for personal data: a distinctive phone number and a card number go through every flow of the real
services behind the gateway — store, resolve, pay by phone, the payee's SMS alert, card issue, reveal and payment,
contact reveal, subject export, compliance export, a vault backup and erasure — and afterwards the captured logs, the
exported spans, the Prometheus metrics, every Redis key and value, a ``pg_dump`` of every service's database and
every file the services wrote (the vault backup among them) are searched for both in every format.

The only places the plaintext may be are the two designed ones: the dev SMS sink (the text sent to the phone) and
the answer of RevealCard to its holder. The vault backup holds the data encrypted, so the numbers may not appear in
it either."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY, generate_latest

from services.contacts.alert_consumers import alert_consumers
from services.contacts.config import load_contacts_config
from services.kit.outbox import STREAM_ENTRY_FIELD
from tests.integration.contacts.conftest import vault_environ
from tests.integration.gateway.conftest import RealStack
from tests.integration.gateway.flows import (
    CUSTOMER_PASSWORD,
    OWNER_PASSWORD,
    Door,
    TotpCodes,
    bearer,
    eur,
    new_id,
    open_doors,
    unique_slug,
)
from tests.integration.services_stack import platform_tokens
from tests.support.privacy_scan import (
    Finding,
    database_dumps_at,
    files_under,
    redis_contents,
    search,
    search_card,
)
from wallet.auth.v1 import (
    auth_credentials_pb2,
    auth_customers_pb2,
    auth_organizations_pb2,
    auth_sessions_pb2,
)
from wallet.common.v1 import events_pb2
from wallet.contacts.v1 import (
    contacts_contact_pb2,
    contacts_directory_pb2,
    contacts_keys_pb2,
    contacts_subjects_pb2,
)
from wallet.ledger.v1 import (
    ledger_accounts_pb2,
    ledger_cards_pb2,
    ledger_events_pb2,
    ledger_service_pb2_grpc,
    ledger_transfers_pb2,
)

pytestmark = pytest.mark.integration

# Distinctive: a valid GB mobile number no other test uses, given in a national format.
PHONE_INPUT = "07400 123 457"
PHONE_E164 = "+447400123457"
PAYMENT_MINOR = 4_321
CARD_PAYMENT_MINOR = 1_250
FUNDING_MINOR = 100_000
ALERT_THRESHOLD_MINOR = 1_000
RETENTION_S = 365 * 24 * 3600


@dataclass
class Person:
    organization_id: str
    principal_id: str
    token: str
    totp: TotpCodes
    # One step-up per person serves every sensitive call of the test (fresh for minutes; TOTP codes are few).
    step_up_token: str = ""

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token)


@pytest.fixture
async def doors(real_stack: RealStack) -> AsyncIterator[tuple[Door, Door]]:
    """(the gateway's door, as mobile apps call; the services' own ports, as in-cluster tools call)."""
    async with open_doors(real_stack) as pair:
        yield pair


async def enrol_totp(door: Door, token: str) -> TotpCodes:
    enrolment = await door.auth.EnrollTotp(auth_credentials_pb2.EnrollTotpRequest(), metadata=bearer(token))
    totp = TotpCodes(enrolment.secret_base32)
    await door.auth.ConfirmTotp(
        auth_credentials_pb2.ConfirmTotpRequest(totp_code=totp.next()), metadata=bearer(token)
    )
    return totp


async def stepped_up(door: Door, person: Person) -> tuple[tuple[str, str], ...]:
    """A step-up token (TOTP) for a sensitive call."""
    if not person.step_up_token:
        reply = await door.auth.StepUp(
            auth_sessions_pb2.StepUpRequest(totp_code=person.totp.next()), metadata=person.auth
        )
        person.step_up_token = reply.step_up.access_token
    return bearer(person.step_up_token)


async def tenant_owner(door: Door, real_stack: RealStack) -> tuple[str, Person]:
    slug = unique_slug("sweep")
    signed_up = await door.auth.SignUpOrganization(
        auth_organizations_pb2.SignUpOrganizationRequest(
            organization_id=new_id(),
            slug=slug,
            display_name=f"Org {slug}",
            owner_email=f"owner@{slug}.example.com",
            owner_display_name="Olive Owner",
            owner_password=OWNER_PASSWORD,
        )
    )
    token = signed_up.tokens.access_token
    totp = await enrol_totp(door, token)
    owner = Person(signed_up.organization.organization_id, signed_up.owner_member_id, token, totp)
    # Customer self sign-up is an internal, in-cluster setting: straight to auth.
    await real_stack.services.auth.stub.UpdateOrganizationPolicy(
        auth_organizations_pb2.UpdateOrganizationPolicyRequest(
            policy=auth_organizations_pb2.OrganizationPolicy(customer_self_sign_up=True),
            update_mask=FieldMask(paths=["customer_self_sign_up"]),
            request_id=new_id(),
        ),
        metadata=await stepped_up(door, owner),
    )
    return slug, owner


async def customer(door: Door, slug: str, organization_id: str, name: str) -> Person:
    customer_id = new_id()
    signed_up = await door.auth.SignUpCustomer(
        auth_customers_pb2.SignUpCustomerRequest(
            customer_id=customer_id,
            organization_slug=slug,
            email=f"{name.lower()}@{slug}.example.com",
            display_name=f"{name} Customer",
            password=CUSTOMER_PASSWORD,
        )
    )
    token = signed_up.tokens.access_token
    return Person(organization_id, customer_id, token, await enrol_totp(door, token))


async def wallet(door: Door, owner: Person, customer_id: str | None, kind: int) -> str:
    account_id = new_id()
    await door.ledger.OpenAccount(
        ledger_accounts_pb2.OpenAccountRequest(
            account_id=account_id, customer_id=customer_id or "", kind=kind, currency="EUR"
        ),
        metadata=owner.auth,
    )
    return account_id


async def posted_envelopes(real_stack: RealStack) -> list[bytes]:
    """The ledger's outbox rows for posted transfers, as its relay publishes them."""
    connection = await asyncpg.connect(real_stack.services.database_urls["ledger"])
    try:
        rows = await connection.fetch("SELECT envelope FROM outbox ORDER BY id")
    finally:
        await connection.close()
    posted: list[bytes] = []
    for row in rows:
        envelope = events_pb2.EventEnvelope.FromString(row["envelope"])
        if envelope.payload.Is(ledger_events_pb2.TransferPosted.DESCRIPTOR):
            posted.append(bytes(row["envelope"]))
    return posted


async def deliver_alerts(real_stack: RealStack) -> None:
    """The payee's transaction alert: the ledger's posted events through the vault's alert consumer (its own stream
    here, so other tests' events do not mix in)."""
    vault = real_stack.services.contacts_app.vault
    assert vault is not None
    stream = f"test.sweep.events.{uuid.uuid4().hex[:8]}"
    redis = real_stack.services.contacts.runtime.redis
    assert redis is not None
    consumer, _ = alert_consumers(
        redis, vault.alerts, ledger_stream=stream, auth_stream=stream + ".auth", start_id="0"
    )
    try:
        await consumer.ensure_group()
        for envelope in await posted_envelopes(real_stack):
            await redis.xadd(stream, {STREAM_ENTRY_FIELD: envelope})
        assert await consumer.consume_once() >= 1
    finally:
        await redis.delete(stream, stream + ".auth")


async def every_flow(door: Door, direct: Door, real_stack: RealStack) -> tuple[str, str]:
    """Runs every flow that touches the phone number or the card number; returns (card number, payee id)."""
    slug, owner = await tenant_owner(door, real_stack)
    payer = await customer(door, slug, owner.organization_id, "Payer")
    payee = await customer(door, slug, owner.organization_id, "Payee")
    funding = await wallet(door, owner, None, ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE)
    merchant = await wallet(door, owner, None, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING)
    payer_wallet = await wallet(door, owner, payer.principal_id, ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET)
    payee_wallet = await wallet(door, owner, payee.principal_id, ledger_accounts_pb2.ACCOUNT_KIND_CUSTOMER_WALLET)
    await door.ledger.CreateTransfer(
        ledger_transfers_pb2.CreateTransferRequest(
            transfer_id=new_id(), debit_account_id=funding, credit_account_id=payer_wallet, amount=eur(FUNDING_MINOR)
        ),
        metadata=owner.auth,
    )
    await door.ledger.CreateTransfer(
        ledger_transfers_pb2.CreateTransferRequest(
            transfer_id=new_id(), debit_account_id=funding, credit_account_id=payee_wallet, amount=eur(FUNDING_MINOR)
        ),
        metadata=owner.auth,
    )

    # Store: the payee keeps the number in the vault for alerts and to be found.
    stored = await door.contacts.StoreContact(
        contacts_contact_pb2.StoreContactRequest(
            contact_id=new_id(),
            phone_number=PHONE_INPUT,
            region_hint="GB",
            purposes=[
                contacts_contact_pb2.PURPOSE_TRANSACTION_ALERTS,
                contacts_contact_pb2.PURPOSE_PAYEE_LOOKUP,
                contacts_contact_pb2.PURPOSE_SUPPORT,
            ],
            consent_reference="consent-sweep-1",
            retention=Duration(seconds=RETENTION_S),
            alert_thresholds=[eur(ALERT_THRESHOLD_MINOR)],
        ),
        metadata=payee.auth,
    )
    contact_id = stored.contact.contact_id
    await door.contacts.GetContact(contacts_contact_pb2.GetContactRequest(contact_id=contact_id), metadata=payee.auth)
    await door.contacts.SetDiscoverability(
        contacts_directory_pb2.SetDiscoverabilityRequest(
            contact_id=contact_id, discoverable=True, default_account_id=payee_wallet, request_id=new_id()
        ),
        metadata=payee.auth,
    )

    # Resolve + pay: the payer pays the number (the ledger resolves it in the vault); a miss answers alike.
    paid = await door.ledger.PayByPhone(
        ledger_transfers_pb2.PayByPhoneRequest(
            transfer_id=new_id(),
            debit_account_id=payer_wallet,
            phone_number=PHONE_INPUT,
            region_hint="GB",
            amount=eur(PAYMENT_MINOR),
            reference="dinner",
        ),
        metadata=payer.auth,
    )
    assert paid.transfer.credit_account_id == payee_wallet
    with pytest.raises(grpc.aio.AioRpcError):
        await door.ledger.PayByPhone(
            ledger_transfers_pb2.PayByPhoneRequest(
                transfer_id=new_id(),
                debit_account_id=payer_wallet,
                phone_number="07400 123 458",
                region_hint="GB",
                amount=eur(PAYMENT_MINOR),
            ),
            metadata=payer.auth,
        )

    # Notify: the payee's alert for the payment, through the vault's consumer of the ledger's events.
    await deliver_alerts(real_stack)

    # Cards: issued to the payee, revealed with step-up, paid with by a card processor, captured.
    card_id = new_id()
    await door.ledger.IssueCard(
        ledger_cards_pb2.IssueCardRequest(card_id=card_id, account_id=payee_wallet), metadata=payee.auth
    )
    revealed = await door.ledger.RevealCard(
        ledger_cards_pb2.RevealCardRequest(card_id=card_id), metadata=await stepped_up(door, payee)
    )
    card_number = revealed.card_number
    assert len(card_number) == 16
    assert card_number.isdigit()
    processor = await platform_tokens(real_stack.services.auth, "sweep-card-processor", "ledger.card_payments.write")
    processor_auth = bearer(await processor.token_for(owner.organization_id))
    await card_payment(direct.ledger, card_id, merchant, processor_auth)

    # Reveal by support (the owner, stepped up, from the in-cluster back office), the subject's export, a vault
    # backup, then erasure.
    await door.contacts.ExportSubjectData(
        contacts_subjects_pb2.ExportSubjectDataRequest(customer_id=payee.principal_id), metadata=payee.auth
    )
    backups = await platform_tokens(real_stack.services.auth, "sweep-backups", "contacts.backups.admin")
    await direct.contacts.RevealContact(
        contacts_contact_pb2.RevealContactRequest(
            contact_id=contact_id,
            reveal_purpose=contacts_contact_pb2.REVEAL_PURPOSE_SUPPORT_CALL,
            justification="ticket SUP-12 callback requested",
        ),
        metadata=await stepped_up(door, owner),
    )
    await direct.contacts.CreateBackup(
        contacts_keys_pb2.CreateBackupRequest(backup_id=new_id()),
        metadata=bearer(await backups.token_for(owner.organization_id)),
    )
    await door.contacts.EraseSubject(
        contacts_subjects_pb2.EraseSubjectRequest(
            customer_id=payee.principal_id, reason="the customer asked to be forgotten", request_id=new_id()
        ),
        metadata=await stepped_up(door, payee),
    )
    return card_number, payee.principal_id


async def card_payment(
    ledger: ledger_service_pb2_grpc.LedgerServiceStub,
    card_id: str,
    merchant: str,
    processor_auth: tuple[tuple[str, str], ...],
) -> None:
    """A card processor (in-cluster, its own platform token) authorizes a payment with the card and captures it."""
    authorized = await ledger.AuthorizeCardPayment(
        ledger_cards_pb2.AuthorizeCardPaymentRequest(
            transfer_id=new_id(), card_id=card_id, merchant_account_id=merchant, amount=eur(CARD_PAYMENT_MINOR)
        ),
        metadata=processor_auth,
    )
    await ledger.CaptureCardPayment(
        ledger_cards_pb2.CaptureCardPaymentRequest(transfer_id=authorized.transfer.transfer_id, request_id=new_id()),
        metadata=processor_auth,
    )


def findings_in(where: str, haystack: bytes, card_number: str) -> list[Finding]:
    return search(where, haystack, PHONE_E164) + search_card(where, haystack, card_number)


async def test_phone_and_card_numbers_appear_nowhere_after_every_flow(
    doors: tuple[Door, Door],
    real_stack: RealStack,
    postgres_server_url: str,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    span_exporter.clear()
    card_number, payee_id = await every_flow(*doors, real_stack)

    run_dir = real_stack.services.run_dir
    vault_config = load_contacts_config(run_dir, vault_environ(run_dir))
    sms_sink = vault_config.sms_outbox_path
    assert PHONE_E164 in await asyncio.to_thread(sms_sink.read_text), "the alert reached the payee's phone"
    backups = [path for path in vault_config.backup_dir.iterdir() if path.is_file()]
    assert backups, "the vault backup was written under the run dir, where the files are searched"
    assert all(path.is_relative_to(run_dir) for path in backups)

    places: list[tuple[str, bytes]] = []
    log_text = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')} {record.exc_text or ''}" for record in caplog.records
    )
    assert log_text.strip()
    places.append(("logs", log_text.encode()))
    spans = span_exporter.get_finished_spans()
    assert spans
    places.append(("spans", "\n".join(span.to_json() for span in spans).encode()))
    places.append(("metrics", generate_latest(REGISTRY)))
    places.extend(await asyncio.to_thread(lambda: list(redis_contents(real_stack.redis_url))))
    dumps = await asyncio.to_thread(
        lambda: list(database_dumps_at(postgres_server_url, real_stack.services.database_names))
    )
    assert len(dumps) == 4
    assert any(payee_id.encode() in dump for _, dump in dumps), "the dumps really hold the flows' rows"
    places.extend(dumps)
    places.extend(
        (where, content) for where, content in files_under(real_stack.services.run_dir) if Path(where) != sms_sink
    )

    findings = [finding for where, haystack in places for finding in findings_in(where, haystack, card_number)]
    assert findings == []
