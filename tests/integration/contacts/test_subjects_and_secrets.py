"""Notifications through the SMS sink, card secrets, export and erasure (crypto-shredding with a signed receipt)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.duration_pb2 import Duration

from services.contacts.app import build_vault
from services.contacts.caller import Caller
from services.contacts.domain_cards import luhn_valid
from services.contacts.sms import SmsSinkError
from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import error_of, store_request
from wallet.contacts.v1 import contacts_access_log_pb2 as log_pb
from wallet.contacts.v1 import contacts_card_secrets_pb2 as card_pb
from wallet.contacts.v1 import contacts_contact_pb2 as pb
from wallet.contacts.v1 import contacts_notifications_pb2 as note_pb
from wallet.contacts.v1 import contacts_subjects_pb2 as subject_pb

pytestmark = pytest.mark.integration

NOTIFY = "contacts.notifications.write"
CARDS = ("contacts.card_secrets.write", "contacts.card_secrets.reveal")


def outbox(vault: Vault) -> list[dict[str, str]]:
    path = vault.config.sms_outbox_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_notification_goes_to_the_sink_once_and_is_logged(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 135 2222 3333", ""), metadata=vault.customer(customer))
    request = note_pb.SendNotificationRequest(
        notification_id=str(uuid.uuid4()),
        contact_id=stored.contact.contact_id,
        notification_template=note_pb.NOTIFICATION_TEMPLATE_TRANSACTION_ALERT,
        params={"amount": "12.50", "currency": "CNY", "direction": "out", "reference": "coffee"},
    )
    sent = await vault.stub.SendNotification(request, metadata=vault.service(NOTIFY))
    again = await vault.stub.SendNotification(request, metadata=vault.service(NOTIFY))
    assert sent.notification.status == note_pb.NOTIFICATION_STATUS_SENT
    assert sent.notification.masked_phone_number == "+86 135****3333"
    assert again.notification == sent.notification
    messages = [m for m in outbox(vault) if m["notification_id"] == request.notification_id]
    assert messages == [
        {
            "notification_id": request.notification_id,
            "to": "+8613522223333",
            "body": "Wallet: out 12.50 CNY (coffee).",
        }
    ]
    log = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(customer))
    assert [e.action for e in log.entries] == [log_pb.ACCESS_ACTION_NOTIFICATION]


async def test_notification_checks_purpose_params_and_suppresses_without_a_contact(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(
        store_request("+86 135 2222 4444", "", purposes=[pb.PURPOSE_SUPPORT]), metadata=vault.customer(customer)
    )
    otp = note_pb.SendNotificationRequest(
        notification_id=str(uuid.uuid4()),
        contact_id=stored.contact.contact_id,
        notification_template=note_pb.NOTIFICATION_TEMPLATE_LOGIN_OTP,
        params={"code": "123456", "expires_in_s": "300"},
    )
    assert (
        await error_of(vault.stub.SendNotification(otp, metadata=vault.service(NOTIFY)))
    ).reason == "PURPOSE_NOT_ALLOWED"
    otp.params["code"] = "+86 135 2222 4444"
    bad = await error_of(vault.stub.SendNotification(otp, metadata=vault.service(NOTIFY)))
    assert [v.field for v in bad.field_violations] == ["params[code]"]
    by_customer = note_pb.SendNotificationRequest(
        notification_id=str(uuid.uuid4()),
        customer_id=customer,
        notification_template=note_pb.NOTIFICATION_TEMPLATE_LOGIN_OTP,
        params={"code": "123456", "expires_in_s": "300"},
    )
    suppressed = await vault.stub.SendNotification(by_customer, metadata=vault.service(NOTIFY))
    assert suppressed.notification.status == note_pb.NOTIFICATION_STATUS_SUPPRESSED


async def test_card_secret_generated_revealed_and_deleted(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    card_id = str(uuid.uuid4())
    request = card_pb.StoreCardSecretRequest(
        card_secret_id=card_id, customer_id=customer, generate=card_pb.GeneratedCardSecret()
    )
    stored = await vault.stub.StoreCardSecret(request, metadata=vault.service(*CARDS))
    assert (
        await vault.stub.StoreCardSecret(request, metadata=vault.service(*CARDS))
    ).card_secret == stored.card_secret
    revealed = await vault.stub.RevealCardSecret(
        card_pb.RevealCardSecretRequest(card_secret_id=card_id, on_behalf_of_principal_id=customer),
        metadata=vault.service(*CARDS),
    )
    assert revealed.card_number.startswith("424242")
    assert luhn_valid(revealed.card_number)
    assert revealed.card_number[-4:] == stored.card_secret.last_four
    assert len(revealed.cvv) == 3
    log = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(customer))
    assert [e.action for e in log.entries] == [log_pb.ACCESS_ACTION_CARD_SECRET_REVEAL]
    await vault.stub.DeleteCardSecret(
        card_pb.DeleteCardSecretRequest(card_secret_id=card_id, request_id=str(uuid.uuid4())),
        metadata=vault.service(*CARDS),
    )
    gone = await error_of(
        vault.stub.RevealCardSecret(
            card_pb.RevealCardSecretRequest(card_secret_id=card_id, on_behalf_of_principal_id=customer),
            metadata=vault.service(*CARDS),
        )
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND


async def test_provided_card_must_be_luhn_valid(vault: Vault) -> None:
    request = card_pb.StoreCardSecretRequest(
        card_secret_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        provided=card_pb.ProvidedCardSecret(
            card_number="4111111111111112", cvv="12", expiry_month=13, expiry_year=2030
        ),
    )
    details = await error_of(vault.stub.StoreCardSecret(request, metadata=vault.service(*CARDS)))
    fields = {v.field for v in details.field_violations}
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT, details.message
    assert fields == {"provided.card_number", "provided.cvv", "provided.expiry_month"}
    assert "4111111111111112" not in details.message


async def test_export_then_erase_then_export_returns_nothing(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    contact = await vault.stub.StoreContact(store_request("+86 135 9999 0000", ""), metadata=vault.customer(customer))
    await vault.stub.StoreCardSecret(
        card_pb.StoreCardSecretRequest(
            card_secret_id=str(uuid.uuid4()), customer_id=customer, generate=card_pb.GeneratedCardSecret()
        ),
        metadata=vault.service(*CARDS),
    )
    export = await vault.stub.ExportSubjectData(
        subject_pb.ExportSubjectDataRequest(customer_id=customer), metadata=vault.customer(customer)
    )
    assert [c.masked_phone_number for c in export.contacts] == ["+86 135****0000"]
    assert len(export.card_secrets) == 1
    assert export.access_log_entry_count == 1
    erase = subject_pb.EraseSubjectRequest(
        customer_id=customer, reason="subject request", request_id=str(uuid.uuid4())
    )
    no_step_up = await error_of(vault.stub.EraseSubject(erase, metadata=vault.customer(customer)))
    assert no_step_up.reason == "STEP_UP_REQUIRED"
    stepped_up = vault.token(sub=customer, pty="customer", roles=["customer"], acr="mfa")
    receipt = (await vault.stub.EraseSubject(erase, metadata=stepped_up)).receipt
    assert (receipt.contacts_erased, receipt.card_secrets_erased) == (1, 1)
    assert (await vault.stub.EraseSubject(erase, metadata=stepped_up)).receipt == receipt
    connection = await asyncpg.connect(vault.database_url)
    try:
        public_key = await connection.fetchval(
            "SELECT public_key FROM signing_key WHERE signing_key_id = $1", receipt.signing_key_id
        )
        wrapped = await connection.fetchval(
            "SELECT wrapped_key FROM data_key WHERE customer_id = $1", uuid.UUID(customer)
        )
    finally:
        await connection.close()
    Ed25519PublicKey.from_public_bytes(public_key).verify(receipt.signature, receipt.statement)
    assert json.loads(receipt.statement)["customer_id"] == customer
    assert wrapped is None
    get = await error_of(
        vault.stub.GetContact(
            pb.GetContactRequest(contact_id=contact.contact.contact_id), metadata=vault.customer(customer)
        )
    )
    assert get.reason == "SUBJECT_ERASED"
    after = await vault.stub.ExportSubjectData(
        subject_pb.ExportSubjectDataRequest(customer_id=customer), metadata=vault.customer(customer)
    )
    assert list(after.contacts) == []
    assert list(after.card_secrets) == []
    stored_again = await error_of(
        vault.stub.StoreContact(store_request("+86 135 9999 0001", ""), metadata=vault.customer(customer))
    )
    assert stored_again.reason == "SUBJECT_ERASED"
    verdict = await vault.stub.VerifyAccessLog(log_pb.VerifyAccessLogRequest(), metadata=vault.member("auditor"))
    assert verdict.intact


async def test_retention_job_purges_expired_contacts_and_chainer_chains(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    short = await vault.stub.StoreContact(
        store_request("+86 135 7777 0001", "", retention=Duration(seconds=60)), metadata=vault.customer(customer)
    )
    kept = await vault.stub.StoreContact(store_request("+86 135 7777 0002", ""), metadata=vault.customer(customer))
    later = datetime.now(UTC) + timedelta(hours=1)
    future = build_vault(vault.server.runtime, vault.config, clock=lambda: later)
    assert await future.contacts.purge_expired(100) >= 1
    gone = await error_of(
        vault.stub.GetContact(
            pb.GetContactRequest(contact_id=short.contact.contact_id), metadata=vault.customer(customer)
        )
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND
    await vault.stub.GetContact(
        pb.GetContactRequest(contact_id=kept.contact.contact_id), metadata=vault.customer(customer)
    )
    await vault.stub.ExportSubjectData(
        subject_pb.ExportSubjectDataRequest(customer_id=customer), metadata=vault.customer(customer)
    )
    assert await future.subjects.chain_access_log(10) >= 1
    assert await future.subjects.chain_access_log(10) == 0


class RefusingSink:
    async def send(self, notification_id: uuid.UUID, to_e164: str, body: str) -> None:
        raise SmsSinkError("provider unavailable")


async def test_a_refused_notification_is_failed_and_can_be_retried(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 135 2222 5555", ""), metadata=vault.customer(customer))
    refusing = build_vault(vault.server.runtime, vault.config, sink=RefusingSink())
    caller = Caller(uuid.UUID(vault.organization_id), "svc-notifier", "service", None)
    notification_id = str(uuid.uuid4())
    params = {"time": "12:00"}
    failed = await refusing.messages.send_notification(
        caller,
        notification_id,
        stored.contact.contact_id,
        "",
        note_pb.NOTIFICATION_TEMPLATE_DEVICE_RESET_ALERT,
        params,
    )
    assert failed.record.status == note_pb.NOTIFICATION_STATUS_FAILED
    retried = await vault.stub.SendNotification(
        note_pb.SendNotificationRequest(
            notification_id=notification_id,
            contact_id=stored.contact.contact_id,
            notification_template=note_pb.NOTIFICATION_TEMPLATE_DEVICE_RESET_ALERT,
            params=params,
        ),
        metadata=vault.service(NOTIFY),
    )
    assert retried.notification.status == note_pb.NOTIFICATION_STATUS_SENT
