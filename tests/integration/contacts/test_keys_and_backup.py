"""KEK rewrap and blind-index reindex (reads and resolves keep working mid-job; a restart resumes), integrity
failures as DATA_LOSS, and the backup/restore drill into a fresh database."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest

from services.contacts.app import build_vault
from services.contacts.crypto import BlindIndexer, KeyRing, LocalKms
from services.contacts.envelope import INTEGRITY_FAILURES
from services.contacts.service_keys import KeysService
from services.contacts.store import PgVault
from tests.integration.contacts.conftest import Vault, start_vault, stop_vault
from tests.integration.contacts.test_contacts import error_of, store_request
from tests.integration.contacts.test_directory_and_access_log import DIRECTORY, discoverable_contact
from wallet.contacts.v1 import contacts_contact_pb2 as pb
from wallet.contacts.v1 import contacts_directory_pb2 as directory_pb
from wallet.contacts.v1 import contacts_keys_pb2 as keys_pb

pytestmark = pytest.mark.integration

KEYS = ("contacts.keys.admin", "contacts.keys.read")
BACKUPS = "contacts.backups.admin"


async def read_everything(vault: Vault, contacts: list[tuple[str, str, str]], phone: str) -> None:
    for customer, contact_id, masked in contacts:
        got = await vault.stub.GetContact(
            pb.GetContactRequest(contact_id=contact_id), metadata=vault.customer(customer)
        )
        assert got.contact.masked_phone_number == masked
    resolved = await vault.stub.ResolvePhone(
        directory_pb.ResolvePhoneRequest(phone_number=phone), metadata=vault.service(DIRECTORY)
    )
    assert resolved.customer_id


async def test_rewrap_and_reindex_keep_reads_working_and_resume_after_restart(vault: Vault) -> None:
    contacts: list[tuple[str, str, str]] = []
    for index in range(5):
        customer = str(uuid.uuid4())
        stored = await vault.stub.StoreContact(
            store_request(f"+86 134 0000 000{index}", ""), metadata=vault.customer(customer)
        )
        contacts.append((customer, stored.contact.contact_id, stored.contact.masked_phone_number))
    await discoverable_contact(vault, "+86 134 0000 0099")
    operator = vault.service(*KEYS)

    started = (
        await vault.stub.RotateKek(keys_pb.RotateKekRequest(request_id=str(uuid.uuid4())), metadata=operator)
    ).key_job
    assert (started.state, started.from_key_version, started.to_key_version) == (keys_pb.KEY_JOB_STATE_RUNNING, 1, 2)
    assert started.items_total == 6
    busy = await error_of(
        vault.stub.RotateBlindIndexKey(
            keys_pb.RotateBlindIndexKeyRequest(request_id=str(uuid.uuid4())), metadata=operator
        )
    )
    assert busy.reason == "KEY_ROTATION_IN_PROGRESS"
    assert vault.app.vault is not None
    assert await vault.app.vault.keys.advance()  # one batch of 2 (CONTACTS_KEY_JOB_BATCH_SIZE)
    status = (await vault.stub.GetRewrapStatus(keys_pb.GetRewrapStatusRequest(), metadata=operator)).key_job
    assert (status.state, status.items_done) == (keys_pb.KEY_JOB_STATE_RUNNING, 2)
    await read_everything(vault, contacts, "+86 134 0000 0099")  # mixed KEK versions mid-rewrap

    # A restart: fresh service objects over the same database pick the running job up where it stopped.
    restarted = build_vault(vault.server.runtime, vault.config)
    while await restarted.keys.advance():
        await read_everything(vault, contacts, "+86 134 0000 0099")
    status = (
        await vault.stub.GetRewrapStatus(
            keys_pb.GetRewrapStatusRequest(key_job_id=started.key_job_id), metadata=operator
        )
    ).key_job
    assert (status.state, status.items_done, status.items_total) == (keys_pb.KEY_JOB_STATE_COMPLETED, 6, 6)
    connection = await asyncpg.connect(vault.database_url)
    try:
        assert await connection.fetchval("SELECT array_agg(DISTINCT kek_version) FROM data_key") == [2]
    finally:
        await connection.close()
    again = await error_of(
        vault.stub.RotateKek(keys_pb.RotateKekRequest(request_id=str(uuid.uuid4())), metadata=operator)
    )
    assert again.reason == "KEY_VERSION_UNAVAILABLE"

    reindex = (
        await vault.stub.RotateBlindIndexKey(
            keys_pb.RotateBlindIndexKeyRequest(request_id=str(uuid.uuid4())), metadata=operator
        )
    ).key_job
    assert reindex.to_key_version == 2
    await restarted.keys.advance()
    await read_everything(vault, contacts, "+86 134 0000 0099")  # lookups use both index versions mid-reindex
    while await restarted.keys.advance():
        pass
    done = (await vault.stub.GetReindexStatus(keys_pb.GetReindexStatusRequest(), metadata=operator)).key_job
    assert done.state == keys_pb.KEY_JOB_STATE_COMPLETED
    assert done.items_done == done.items_total
    await read_everything(vault, contacts, "+86 134 0000 0099")


async def test_tampered_or_moved_ciphertext_is_data_loss(vault: Vault, caplog: pytest.LogCaptureFixture) -> None:
    failures_before = INTEGRITY_FAILURES.labels("contact")._value.get()
    customer = str(uuid.uuid4())
    first = await vault.stub.StoreContact(store_request("+86 133 0000 0001", ""), metadata=vault.customer(customer))
    second = await vault.stub.StoreContact(store_request("+86 133 0000 0002", ""), metadata=vault.customer(customer))
    connection = await asyncpg.connect(vault.database_url)
    try:
        # Copy the second row's ciphertext into the first: same data key, but the associated data names the row.
        await connection.execute(
            "UPDATE contact SET phone_ciphertext = (SELECT phone_ciphertext FROM contact WHERE contact_id = $2) "
            "WHERE contact_id = $1",
            uuid.UUID(first.contact.contact_id),
            uuid.UUID(second.contact.contact_id),
        )
    finally:
        await connection.close()
    details = await error_of(
        vault.stub.GetContact(
            pb.GetContactRequest(contact_id=first.contact.contact_id), metadata=vault.customer(customer)
        )
    )
    assert (details.code, details.reason) == (grpc.StatusCode.DATA_LOSS, "CIPHERTEXT_INVALID")
    assert INTEGRITY_FAILURES.labels("contact")._value.get() == failures_before + 1
    assert any(record.getMessage() == "stored ciphertext failed authentication" for record in caplog.records)


async def test_backup_restores_into_a_fresh_database(
    vault: Vault, postgres_server_url: str, redis_server_url: str, vault_keys: dict[str, str], vault_run_dir: Path
) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 132 5555 6666", ""), metadata=vault.customer(customer))
    backup = (
        await vault.stub.CreateBackup(
            keys_pb.CreateBackupRequest(backup_id=str(uuid.uuid4())), metadata=vault.service(BACKUPS)
        )
    ).backup
    assert backup.contact_count >= 1
    content = await asyncio.to_thread(Path(backup.location).read_bytes)
    assert b"+86" not in content
    assert b"13255556666" not in content

    restored_vault = await start_vault(postgres_server_url, redis_server_url, vault_run_dir, vault_keys)
    restored_vault.organization_id = vault.organization_id
    try:
        tampered = await error_of(
            restored_vault.stub.RestoreBackup(
                keys_pb.RestoreBackupRequest(location=backup.location, sha256="0" * 64, request_id=str(uuid.uuid4())),
                metadata=restored_vault.service(BACKUPS),
            )
        )
        assert (tampered.code, tampered.reason) == (grpc.StatusCode.DATA_LOSS, "BACKUP_INVALID")
        restore = keys_pb.RestoreBackupRequest(
            location=backup.location, sha256=backup.sha256, request_id=str(uuid.uuid4())
        )
        restored = (await restored_vault.stub.RestoreBackup(restore, metadata=restored_vault.service(BACKUPS))).backup
        assert restored.contact_count == backup.contact_count
        got = await restored_vault.stub.GetContact(
            pb.GetContactRequest(contact_id=stored.contact.contact_id), metadata=restored_vault.customer(customer)
        )
        assert got.contact.masked_phone_number == "+86 132****6666"
        revealed = await restored_vault.stub.RevealContact(
            pb.RevealContactRequest(
                contact_id=stored.contact.contact_id,
                reveal_purpose=pb.REVEAL_PURPOSE_LEGAL_REQUEST,
                justification="restore drill: legal hold verification",
            ),
            metadata=restored_vault.member("support", step_up=True),
        )
        assert revealed.phone_number == "+8613255556666"
        not_empty = await error_of(
            restored_vault.stub.RestoreBackup(restore, metadata=restored_vault.service(BACKUPS))
        )
        assert not_empty.reason == "RESTORE_TARGET_NOT_EMPTY"
        outside = await error_of(
            restored_vault.stub.RestoreBackup(
                keys_pb.RestoreBackupRequest(location="/etc/passwd", sha256="0" * 64, request_id=str(uuid.uuid4())),
                metadata=restored_vault.service(BACKUPS),
            )
        )
        assert [v.field for v in outside.field_violations] == ["location"]
    finally:
        await stop_vault(restored_vault, postgres_server_url)


async def test_start_up_key_check_names_a_wrong_kek_or_index_key(vault: Vault, vault_keys: dict[str, str]) -> None:
    await vault.stub.StoreContact(store_request("+86 131 0000 0001", ""), metadata=vault.customer(str(uuid.uuid4())))
    pool = vault.server.runtime.pool
    right = KeysService(
        PgVault(lambda: pool),
        LocalKms(vault.config.kek_ring),
        BlindIndexer(vault.config.blind_index_ring),
        lambda: datetime.now(UTC),
        10,
    )
    assert await right.check_keys() == []
    wrong_kek = KeysService(
        PgVault(lambda: pool),
        LocalKms(KeyRing("CONTACTS_KEK", {1: os.urandom(32), 2: os.urandom(32)})),
        BlindIndexer(vault.config.blind_index_ring),
        lambda: datetime.now(UTC),
        10,
    )
    problems = await wrong_kek.check_keys()
    assert problems
    assert problems[0].startswith("CONTACTS_KEK version")
    wrong_index = KeysService(
        PgVault(lambda: pool),
        LocalKms(vault.config.kek_ring),
        BlindIndexer(KeyRing("CONTACTS_BLIND_INDEX_KEY", {1: os.urandom(32)})),
        lambda: datetime.now(UTC),
        10,
    )
    assert await wrong_index.check_keys() == ["CONTACTS_BLIND_INDEX_KEY does not match the stored blind indexes"]


async def test_process_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CONTACTS_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.contacts",
        env={
            **environment,
            "WALLET_RUN_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql://127.0.0.1:1/x",
            "REDIS_URL": "redis://127.0.0.1:1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert (
        stderr.decode().strip()
        == "contacts: configuration error: CONTACTS_KEK (or CONTACTS_KEK_FILE) is required but not set"
    )
