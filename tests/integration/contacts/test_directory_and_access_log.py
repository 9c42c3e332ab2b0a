"""Pay by phone (SetDiscoverability, ResolvePhone with its rate limit) and the hash-chained access log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

import asyncpg
import grpc
import pytest

from services.kit.status import ErrorDetails
from tests.integration.contacts.conftest import RESOLVE_LIMIT_PER_MIN, Vault
from tests.integration.contacts.test_contacts import error_of, store_request
from wallet.contacts.v1 import contacts_access_log_pb2 as log_pb
from wallet.contacts.v1 import contacts_contact_pb2 as pb
from wallet.contacts.v1 import contacts_directory_pb2 as directory_pb

pytestmark = pytest.mark.integration

DIRECTORY = "contacts.directory.read"


async def discoverable_contact(vault: Vault, phone: str) -> tuple[str, str, str]:
    customer, account = str(uuid.uuid4()), str(uuid.uuid4())
    stored = await vault.stub.StoreContact(
        store_request(phone, "", purposes=[pb.PURPOSE_PAYEE_LOOKUP]), metadata=vault.customer(customer)
    )
    await vault.stub.SetDiscoverability(
        directory_pb.SetDiscoverabilityRequest(
            contact_id=stored.contact.contact_id,
            discoverable=True,
            default_account_id=account,
            request_id=str(uuid.uuid4()),
        ),
        metadata=vault.customer(customer),
    )
    return customer, account, stored.contact.contact_id


async def test_resolve_finds_an_opted_in_customer_in_any_format(vault: Vault) -> None:
    customer, account, _ = await discoverable_contact(vault, "+86 136 1234 0001")
    resolved = await vault.stub.ResolvePhone(
        directory_pb.ResolvePhoneRequest(
            phone_number="136-1234-0001", region_hint="CN", on_behalf_of_principal_id="payer-1"
        ),
        metadata=vault.service(DIRECTORY),
    )
    assert (resolved.customer_id, resolved.default_account_id) == (customer, account)
    assert list(resolved.account_ids) == [account]
    assert resolved.masked_phone_number == "+86 136****0001"
    entries = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(customer))
    assert [e.action for e in entries.entries] == [log_pb.ACCESS_ACTION_RESOLVE]
    assert entries.entries[0].on_behalf_of_principal_id == "payer-1"
    assert len(entries.entries[0].trace_id) == 32
    assert entries.entries[0].actor_principal_id


async def test_misses_all_look_the_same(vault: Vault) -> None:
    customer, _, contact_id = await discoverable_contact(vault, "+86 136 1234 0002")
    hidden = await vault.stub.StoreContact(
        store_request("+86 136 1234 0003", "", purposes=[pb.PURPOSE_PAYEE_LOOKUP]), metadata=vault.customer(customer)
    )
    assert hidden.contact.discoverable is False
    opted_out = directory_pb.SetDiscoverabilityRequest(
        contact_id=contact_id, discoverable=False, request_id=str(uuid.uuid4())
    )
    await vault.stub.SetDiscoverability(opted_out, metadata=vault.customer(customer))
    misses = []
    for number in ("+86 136 1234 0002", "+86 136 1234 0003", "+86 136 1234 0009"):
        request = directory_pb.ResolvePhoneRequest(phone_number=number)
        misses.append(await error_of(vault.stub.ResolvePhone(request, metadata=vault.service(DIRECTORY))))
    assert {(m.code, m.reason, m.message) for m in misses} == {
        (grpc.StatusCode.NOT_FOUND, "NOT_FOUND", "contact not found")
    }


async def test_discoverability_needs_payee_lookup_purpose(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 136 1234 0004", ""), metadata=vault.customer(customer))
    request = directory_pb.SetDiscoverabilityRequest(
        contact_id=stored.contact.contact_id,
        discoverable=True,
        default_account_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
    )
    details = await error_of(vault.stub.SetDiscoverability(request, metadata=vault.customer(customer)))
    assert details.reason == "PURPOSE_NOT_ALLOWED"


async def test_resolve_is_rate_limited_per_caller_without_the_number_in_redis(
    vault: Vault, redis_client: object
) -> None:
    # A fresh caller id gets its own window. Windows are fixed minutes: if one ends mid-test the count restarts,
    # so 2 * limit + 1 attempts always reach a refusal, and the first refusal comes after at least `limit` calls.
    caller = vault.token(pty="service", roles=[], scope=DIRECTORY, sub=f"svc-{uuid.uuid4()}")
    limited = None
    for attempt in range(2 * RESOLVE_LIMIT_PER_MIN + 1):
        request = directory_pb.ResolvePhoneRequest(phone_number=f"+86 136 1235 {attempt:04d}")
        details = await error_of(vault.stub.ResolvePhone(request, metadata=caller))
        if details.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            limited = attempt
            assert details.reason == "RATE_LIMITED"
            assert details.retry_after_s is not None
            break
        assert details.code == grpc.StatusCode.NOT_FOUND
    assert limited is not None
    assert limited >= RESOLVE_LIMIT_PER_MIN
    keys = [key.decode() for key in await redis_client.keys("contacts:resolve:*")]  # type: ignore[attr-defined]
    assert keys
    assert all("1361235" not in key and "+86" not in key for key in keys)


async def test_access_log_chain_verifies_and_detects_tampering(vault: Vault) -> None:
    customer, _, contact_id = await discoverable_contact(vault, "+86 136 1234 0005")
    for _ in range(3):
        await vault.stub.ResolvePhone(
            directory_pb.ResolvePhoneRequest(phone_number="+86 136 1234 0005"), metadata=vault.service(DIRECTORY)
        )
    auditor = vault.member("auditor")
    verdict = await vault.stub.VerifyAccessLog(log_pb.VerifyAccessLogRequest(), metadata=auditor)
    assert verdict.intact
    assert verdict.entries_checked >= 3
    listed = await vault.stub.ListAccessLog(
        log_pb.ListAccessLogRequest(customer_id=customer, page_size=2), metadata=auditor
    )
    assert len(listed.entries) == 2
    assert listed.next_page_token
    assert all(entry.sequence > 0 and len(entry.entry_hash) == 32 for entry in listed.entries)
    # Append-only: the table refuses edits, so a tamperer must first drop the guard.
    connection = await asyncpg.connect(vault.database_url)
    try:
        with pytest.raises(asyncpg.RaiseError):
            await connection.execute("UPDATE access_log SET justification = 'x'")
        async with connection.transaction():
            await connection.execute("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only")
            sequence = await connection.fetchval(
                "UPDATE access_log SET actor_principal_id = 'someone-else' WHERE contact_id = $1 "
                "AND sequence = (SELECT max(sequence) FROM access_log WHERE contact_id = $1) RETURNING sequence",
                uuid.UUID(contact_id),
            )
            await connection.execute("ALTER TABLE access_log ENABLE TRIGGER access_log_append_only")
        verdict = await vault.stub.VerifyAccessLog(log_pb.VerifyAccessLogRequest(), metadata=auditor)
        assert not verdict.intact
        assert verdict.first_broken_sequence == sequence
    finally:
        await connection.close()


async def test_customers_read_only_their_own_access_log(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    other = await error_of(
        vault.stub.ListAccessLog(
            log_pb.ListAccessLogRequest(customer_id=str(uuid.uuid4())), metadata=vault.customer(customer)
        )
    )
    assert other.code == grpc.StatusCode.NOT_FOUND


async def test_concurrent_resolves_share_batches_and_each_is_answered_and_logged_alone(vault: Vault) -> None:
    # Concurrent calls go through one batched statement: hits, misses and refusals side by side must still get
    # their own answers, and every answered call must already be in the access log (hit) or the miss table.
    payees = [await discoverable_contact(vault, f"+86 136 1236 {index:04d}") for index in range(4)]
    caller = vault.token(pty="service", roles=[], scope=DIRECTORY, sub=f"svc-{uuid.uuid4()}")
    numbers = [f"+86 136 1236 {index:04d}" for index in range(8)]  # 0-3 are discoverable, 4-7 are unknown
    misses_before = await _count(vault, "SELECT count(*) FROM resolve_miss")
    answers = await asyncio.gather(
        *(
            error_of_or_response(
                vault.stub.ResolvePhone(
                    directory_pb.ResolvePhoneRequest(phone_number=number, on_behalf_of_principal_id=f"payer-{index}"),
                    metadata=caller,
                )
            )
            for index, number in enumerate(numbers)
        )
    )
    for index, answer in enumerate(answers):
        if index < len(payees):
            assert isinstance(answer, directory_pb.ResolvePhoneResponse)
            assert (answer.customer_id, answer.default_account_id) == payees[index][:2]
        else:
            assert isinstance(answer, ErrorDetails)
            assert (answer.code, answer.reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    for index, (customer, _, _) in enumerate(payees):
        entries = await vault.stub.ListAccessLog(log_pb.ListAccessLogRequest(), metadata=vault.customer(customer))
        assert [(e.action, e.on_behalf_of_principal_id) for e in entries.entries] == [
            (log_pb.ACCESS_ACTION_RESOLVE, f"payer-{index}")
        ]
    assert await _count(vault, "SELECT count(*) FROM resolve_miss") - misses_before == 4


async def test_a_full_window_refuses_only_the_calls_past_the_limit_in_a_batch(vault: Vault) -> None:
    customer, account, _ = await discoverable_contact(vault, "+86 136 1237 0001")
    caller = vault.token(pty="service", roles=[], scope=DIRECTORY, sub=f"svc-{uuid.uuid4()}")
    request = directory_pb.ResolvePhoneRequest(phone_number="+86 136 1237 0001")
    # More concurrent calls than one window admits: windows are fixed minutes, so a window ending mid-test can
    # admit up to twice the limit; anything beyond that must be refused, and every admitted call must be a hit.
    calls = 2 * RESOLVE_LIMIT_PER_MIN + 10
    answers = await asyncio.gather(
        *(error_of_or_response(vault.stub.ResolvePhone(request, metadata=caller)) for _ in range(calls))
    )
    hits = [a for a in answers if isinstance(a, directory_pb.ResolvePhoneResponse)]
    refused = [a for a in answers if isinstance(a, ErrorDetails)]
    assert RESOLVE_LIMIT_PER_MIN <= len(hits) <= 2 * RESOLVE_LIMIT_PER_MIN
    assert all((hit.customer_id, hit.default_account_id) == (customer, account) for hit in hits)
    assert refused
    assert {(r.code, r.reason) for r in refused} == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")}
    entries = await vault.stub.ListAccessLog(
        log_pb.ListAccessLogRequest(page_size=500), metadata=vault.customer(customer)
    )
    assert len(entries.entries) == len(hits)


async def error_of_or_response(
    call: Awaitable[directory_pb.ResolvePhoneResponse],
) -> directory_pb.ResolvePhoneResponse | ErrorDetails:
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        return ErrorDetails.from_rpc_error(err)


async def _count(vault: Vault, sql: str) -> int:
    connection = await asyncpg.connect(vault.database_url)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()
