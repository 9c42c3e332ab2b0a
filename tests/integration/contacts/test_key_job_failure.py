"""A key job that hits a bad row stops as FAILED (with a safe message) and resumes when the rotation is started
again, once the row is repaired."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import store_request
from tests.integration.contacts.test_keys_and_backup import KEYS
from wallet.contacts.v1 import contacts_keys_pb2 as keys_pb

pytestmark = pytest.mark.integration


async def test_failed_rewrap_resumes_after_repair(vault: Vault) -> None:
    customers = [str(uuid.uuid4()) for _ in range(3)]
    for index, customer in enumerate(customers):
        await vault.stub.StoreContact(
            store_request(f"+86 130 0000 000{index}", ""), metadata=vault.customer(customer)
        )
    connection = await asyncpg.connect(vault.database_url)
    try:
        victim = uuid.UUID(customers[0])
        original = await connection.fetchval("SELECT wrapped_key FROM data_key WHERE customer_id = $1", victim)
        await connection.execute(
            "UPDATE data_key SET wrapped_key = $2 WHERE customer_id = $1",
            victim,
            original[:-1] + bytes([original[-1] ^ 1]),
        )
        operator = vault.service(*KEYS)
        job = (
            await vault.stub.RotateKek(keys_pb.RotateKekRequest(request_id=str(uuid.uuid4())), metadata=operator)
        ).key_job
        assert vault.app.vault is not None
        while await vault.app.vault.keys.advance():
            pass
        failed = (await vault.stub.GetRewrapStatus(keys_pb.GetRewrapStatusRequest(), metadata=operator)).key_job
        assert (failed.key_job_id, failed.state) == (job.key_job_id, keys_pb.KEY_JOB_STATE_FAILED)
        assert failed.error == "stopped on CIPHERTEXT_INVALID"

        await connection.execute("UPDATE data_key SET wrapped_key = $2 WHERE customer_id = $1", victim, original)
        resumed = (
            await vault.stub.RotateKek(keys_pb.RotateKekRequest(request_id=str(uuid.uuid4())), metadata=operator)
        ).key_job
        assert (resumed.key_job_id, resumed.state) == (job.key_job_id, keys_pb.KEY_JOB_STATE_RUNNING)
        while await vault.app.vault.keys.advance():
            pass
        done = (await vault.stub.GetRewrapStatus(keys_pb.GetRewrapStatusRequest(), metadata=operator)).key_job
        assert (done.state, done.error) == (keys_pb.KEY_JOB_STATE_COMPLETED, "")
        assert await connection.fetchval("SELECT count(*) FROM data_key WHERE kek_version <> 2") == 0
    finally:
        await connection.close()
