"""The vault's promise: after storing a distinctive phone number and card number and running every flow that
touches them, neither appears — in any common format — in Postgres (every table, as text), Redis (every key and
value), the captured logs or the exported spans. The dev SMS sink's file is the one designed exception."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from google.protobuf.field_mask_pb2 import FieldMask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.contacts.domain_cards import luhn_check_digit
from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import error_of, store_request
from tests.integration.contacts.test_directory_and_access_log import DIRECTORY
from wallet.contacts.v1 import contacts_access_log_pb2 as log_pb
from wallet.contacts.v1 import contacts_card_secrets_pb2 as card_pb
from wallet.contacts.v1 import contacts_contact_pb2 as pb
from wallet.contacts.v1 import contacts_directory_pb2 as directory_pb
from wallet.contacts.v1 import contacts_keys_pb2 as keys_pb
from wallet.contacts.v1 import contacts_notifications_pb2 as note_pb
from wallet.contacts.v1 import contacts_subjects_pb2 as subject_pb

pytestmark = pytest.mark.integration

PHONE_INPUT = "07911 246813"
PHONE_FORMS = ("+447911246813", "447911246813", "07911246813", "7911246813", "07911 246813", "+44 7911 246813")
CARD_PREFIX = "424242987654321"
CARD_NUMBER = CARD_PREFIX + luhn_check_digit(CARD_PREFIX)
CARD_FORMS = (CARD_NUMBER, " ".join(CARD_NUMBER[i : i + 4] for i in range(0, 16, 4)))


def forbidden() -> list[str]:
    forms = [*PHONE_FORMS, *CARD_FORMS]
    # Also as hex, in case bytes of the plaintext were stored in a bytea column (rendered \x...).
    return forms + [form.encode().hex() for form in forms]


def leaks(text: str) -> list[str]:
    return [form for form in forbidden() if form in text]


async def exercise_every_flow(vault: Vault) -> str:
    customer = str(uuid.uuid4())
    me = vault.customer(customer)
    stored = await vault.stub.StoreContact(
        store_request(
            PHONE_INPUT, "GB", purposes=[pb.PURPOSE_TRANSACTION_ALERTS, pb.PURPOSE_PAYEE_LOOKUP, pb.PURPOSE_SUPPORT]
        ),
        metadata=me,
    )
    contact_id = stored.contact.contact_id
    await vault.stub.GetContact(pb.GetContactRequest(contact_id=contact_id), metadata=me)
    await vault.stub.ListContacts(pb.ListContactsRequest(), metadata=me)
    await vault.stub.UpdateContact(
        pb.UpdateContactRequest(
            contact_id=contact_id,
            update_mask=FieldMask(paths=["phone_number", "region_hint"]),
            phone_number=PHONE_INPUT,
            region_hint="GB",
            request_id=str(uuid.uuid4()),
        ),
        metadata=me,
    )
    await vault.stub.SetDiscoverability(
        directory_pb.SetDiscoverabilityRequest(
            contact_id=contact_id,
            discoverable=True,
            default_account_id=str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
        ),
        metadata=me,
    )
    await vault.stub.ResolvePhone(
        directory_pb.ResolvePhoneRequest(phone_number=PHONE_INPUT, region_hint="GB"),
        metadata=vault.service(DIRECTORY),
    )
    await error_of(
        vault.stub.ResolvePhone(
            directory_pb.ResolvePhoneRequest(phone_number="+44 7911 246814"), metadata=vault.service(DIRECTORY)
        )
    )
    # An invalid request that echoes nothing back: the number must not reach the error either.
    await error_of(vault.stub.StoreContact(store_request(PHONE_INPUT, "GB", consent_reference=""), metadata=me))
    await vault.stub.RevealContact(
        pb.RevealContactRequest(
            contact_id=contact_id,
            reveal_purpose=pb.REVEAL_PURPOSE_SUPPORT_CALL,
            justification="ticket SUP-9 callback requested",
        ),
        metadata=vault.member("support", step_up=True),
    )
    await vault.stub.SendNotification(
        note_pb.SendNotificationRequest(
            notification_id=str(uuid.uuid4()),
            contact_id=contact_id,
            notification_template=note_pb.NOTIFICATION_TEMPLATE_TRANSACTION_ALERT,
            params={"amount": "1.00", "currency": "GBP", "direction": "in", "reference": "rent"},
        ),
        metadata=vault.service("contacts.notifications.write"),
    )
    card_id = str(uuid.uuid4())
    cards = vault.service("contacts.card_secrets.write", "contacts.card_secrets.reveal")
    await vault.stub.StoreCardSecret(
        card_pb.StoreCardSecretRequest(
            card_secret_id=card_id,
            customer_id=customer,
            provided=card_pb.ProvidedCardSecret(card_number=CARD_NUMBER, cvv="737", expiry_month=7, expiry_year=2031),
        ),
        metadata=cards,
    )
    await vault.stub.RevealCardSecret(
        card_pb.RevealCardSecretRequest(card_secret_id=card_id, on_behalf_of_principal_id=customer), metadata=cards
    )
    await vault.stub.ExportSubjectData(subject_pb.ExportSubjectDataRequest(customer_id=customer), metadata=me)
    await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=me)
    await vault.stub.VerifyAccessLog(log_pb.VerifyAccessLogRequest(), metadata=vault.member("auditor"))
    await vault.stub.CreateBackup(
        keys_pb.CreateBackupRequest(backup_id=str(uuid.uuid4())), metadata=vault.service("contacts.backups.admin")
    )
    return customer


async def postgres_text(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            "SELECT quote_ident(table_name) AS name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        dumps = []
        for table in tables:
            rows = await connection.fetch(f"SELECT t::text AS row FROM {table['name']} t")  # noqa: S608 -- catalog names
            dumps += [row["row"] for row in rows]
        return "\n".join(dumps)
    finally:
        await connection.close()


async def redis_text(client: redis_asyncio.Redis) -> str:
    """Every key of the Redis, its dump and (for strings) its value. The server may be shared with other services'
    tests (tens of thousands of keys), so each scan page is read in two pipelined round trips."""
    parts: list[str] = []
    cursor: int = 0
    while True:
        cursor, keys = await client.scan(cursor, count=1_000)
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.dump(key)
                pipe.type(key)
            answers = await pipe.execute()
        strings = [key for index, key in enumerate(keys) if answers[2 * index + 1] == b"string"]
        async with client.pipeline(transaction=False) as pipe:
            for key in strings:
                pipe.get(key)
            values = await pipe.execute()
        parts += [f"{key!r} {answers[2 * index]!r}" for index, key in enumerate(keys)]
        parts += [repr(value) for value in values]
        if cursor == 0:
            return "\n".join(parts)


def files_text(directory: Path, exclude: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("latin-1") for path in directory.rglob("*") if path.is_file() and path != exclude
    )


async def test_plaintext_appears_nowhere_but_the_sms_sink(
    vault: Vault,
    redis_client: redis_asyncio.Redis,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    span_exporter.clear()
    customer = await exercise_every_flow(vault)

    database = await postgres_text(vault.database_url)
    assert customer in database  # the search really reads the vault's rows
    assert leaks(database) == []
    cache = await redis_text(redis_client)
    assert "contacts:resolve" in cache
    assert leaks(cache) == []
    log_text = "\n".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')} {record.exc_text or ''}" for record in caplog.records
    )
    assert leaks(log_text) == []
    spans = span_exporter.get_finished_spans()
    assert spans
    span_text = "\n".join(
        f"{span.name} {dict(span.attributes or {})} {span.status.description} "
        f"{[(event.name, dict(event.attributes or {})) for event in span.events]}"
        for span in spans
    )
    assert leaks(span_text) == []
    outbox = vault.config.sms_outbox_path
    assert "+447911246813" in await asyncio.to_thread(outbox.read_text)
    assert leaks(await asyncio.to_thread(files_text, vault.run_dir, outbox)) == []
