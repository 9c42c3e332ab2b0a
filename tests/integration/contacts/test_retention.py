"""The vault's retention job against a real vault: contacts past their own retention are tombstoned, resolve misses,
notifications and request ids past theirs deleted in bounded batches, young rows and contacts still within their
purpose's retention kept, the access log untouched, and a second sweep changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from services.contacts.app import build_vault
from services.contacts.config import load_contacts_config
from services.kit.config import ConfigError
from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import error_of, store_request
from wallet.contacts.v1 import contacts_contact_pb2 as pb

pytestmark = pytest.mark.integration


async def _insert_rows(vault: Vault, now: datetime, ages_days: list[int]) -> None:
    organization_id = uuid.UUID(vault.organization_id)
    connection = await asyncpg.connect(vault.database_url)
    try:
        for age_days in ages_days:
            at = now - timedelta(days=age_days)
            await connection.execute(
                "INSERT INTO resolve_miss (organization_id, actor_principal_id, occurred_at) VALUES ($1, 'p', $2)",
                organization_id,
                at,
            )
            await connection.execute(
                "INSERT INTO notification (organization_id, notification_id, notification_template, status,"
                " created_at) VALUES ($1, $2, 1, 1, $3)",
                organization_id,
                uuid.uuid4(),
                at,
            )
            await connection.execute(
                "INSERT INTO idempotent_request (organization_id, request_id, method, request_digest, resource_id,"
                " created_at) VALUES ($1, $2, 'm', $3, $4, $5)",
                organization_id,
                uuid.uuid4(),
                b"digest",
                uuid.uuid4(),
                at,
            )
    finally:
        await connection.close()


async def _count(vault: Vault, table: str) -> int:
    connection = await asyncpg.connect(vault.database_url)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 (fixed table names)
    finally:
        await connection.close()


async def test_retention_job_purges_past_retention_in_bounded_batches_and_keeps_the_rest(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    short = await vault.stub.StoreContact(
        store_request("+86 135 6666 0001", "", retention=Duration(seconds=60)), metadata=vault.customer(customer)
    )
    kept = await vault.stub.StoreContact(store_request("+86 135 6666 0002", ""), metadata=vault.customer(customer))
    later = datetime.now(UTC) + timedelta(hours=1)
    # Past every default (misses 30 days, request ids 400, notifications 730) and within it.
    await _insert_rows(vault, later, [800, 800, 800, 5])
    access_log_before = await _count(vault, "access_log")

    job = build_vault(vault.server.runtime, vault.config, clock=lambda: later).retention
    job.batch_rows = 2
    job.rounds_max = 1
    first = await job.sweep_once()
    assert first["contacts_resolve_misses"] == 2
    assert first["contacts_notifications"] == 2
    assert first["contacts_idempotent_requests"] == 2
    assert first["contacts_contacts"] == 1
    second = await job.sweep_once()
    assert second == {
        "contacts_contacts": 0,
        "contacts_resolve_misses": 1,
        "contacts_notifications": 1,
        "contacts_idempotent_requests": 1,
    }
    # Idempotent: nothing left past retention.
    assert set((await job.sweep_once()).values()) == {0}

    for table in ("resolve_miss", "notification", "idempotent_request"):
        assert await _count(vault, table) == 1, table
    assert await _count(vault, "access_log") == access_log_before
    gone = await error_of(
        vault.stub.GetContact(
            pb.GetContactRequest(contact_id=short.contact.contact_id), metadata=vault.customer(customer)
        )
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND
    await vault.stub.GetContact(
        pb.GetContactRequest(contact_id=kept.contact.contact_id), metadata=vault.customer(customer)
    )


def test_vault_refuses_a_retention_below_its_floor(vault: Vault, vault_keys: dict[str, str]) -> None:
    environ = {**vault_keys, "RETENTION_CONTACTS_RESOLVE_MISSES_DAYS": "1"}
    with pytest.raises(ConfigError, match="RETENTION_CONTACTS_RESOLVE_MISSES_DAYS must be between 7 and 365"):
        load_contacts_config(vault.run_dir, environ)
