"""``contacts.resolve_per_s`` and ``contacts.store_per_s``: the vault at 64 calls in flight against a real contacts
server (two processes sharing the port, each with the service's servicer, interceptors, Postgres and Redis; tokens
minted by a key they trust, see ``bench/contacts_server.py``).

Resolve is driven by h2load (one request body: the same discoverable number every call, i.e. the hit path, which
also appends an access-log entry). Store needs a new contact id and number per call, which h2load cannot vary, so
it is driven by a grpc.aio client in this process on the same two cores: its figure is a floor, not a ceiling.
Both are checked afterwards against the rows the calls must have written. ``contacts.resolve_cpu_us`` is the servers'
CPU time over the resolve run per resolve answered (each one logged): unlike resolves per second it does not fall
when other work shares the two cores, so 2 cores ÷ it (less Postgres, Redis and h2load) bounds the rate.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import grpc
from google.protobuf.duration_pb2 import Duration

from bench.context import BenchContext
from bench.cpu import processes_cpu_s
from bench.databases import fresh_service_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import run_grpc_unary
from bench.latency import p50_p99_ms
from bench.registry import Section, register
from devstack.databases import with_database
from wallet.contacts.v1 import contacts_contact_pb2, contacts_directory_pb2

DATABASE = "bench_contacts"
IN_FLIGHT = 64
SERVER_PROCESSES = 2
H2LOAD_CONNECTIONS = 4
DURATION_S = 10.0
WARM_UP_S = 2.0
SERVER_START_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0
SERVICE = "/wallet.contacts.v1.ContactsService"
RESOLVE_NUMBER = "+8613800000001"
YEAR_S = 365 * 24 * 3600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def run(context: BenchContext) -> list[Figure]:
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(fresh_service_database(context.postgres_server_url, database_url, DATABASE, "contacts"))
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": context.redis_url(),
        # Two processes share one port (SO_REUSEPORT): one Python process serves from one core.
        "GRPC_PORT": str(_free_port()),
        "GRPC_SO_REUSEPORT": "true",
        "METRICS_PORT": "0",
        "BENCH_ORGANIZATION_ID": str(uuid.uuid4()),
        "BENCH_SIGNING_SEED": os.urandom(32).hex(),
        "WALLET_RUN_DIR": str(context.work_dir / "contacts"),
        "CONTACTS_KEK": _key(),
        "CONTACTS_BLIND_INDEX_KEY": _key(),
        "CONTACTS_BACKUP_KEY": _key(),
        # The bench is one caller hammering on purpose: lift the enumeration guard out of the way.
        "CONTACTS_RESOLVE_PER_CALLER_PER_MIN": "1000000000",
        "CONTACTS_RESOLVE_PER_TENANT_PER_MIN": "1000000000",
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.contacts_server"],
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(SERVER_PROCESSES)
    ]
    try:
        # Every process must be up; they share the port, the organization and the trusted key, so any's tokens do.
        started = [_read_started(process) for process in processes].pop()
        address = f"127.0.0.1:{started['port']}"
        asyncio.run(_seed_discoverable(address, started["admin_token"]))
        pids = [process.pid for process in processes]
        resolve = _resolve_figures(context, address, started["directory_token"], database_url, pids)
        store = asyncio.run(_store_figure(address, started["admin_token"], database_url))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=CONNECT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
    return [*resolve, store]


def _read_started(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line == "" and process.poll() is not None:
            raise BenchError(f"the contacts bench server exited with code {process.returncode}")
        if line.startswith("{"):
            started: dict[str, Any] = json.loads(line)
            return started
    raise BenchError("the contacts bench server did not start in time")


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _seed_discoverable(address: str, admin_token: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        store = channel.unary_unary(
            f"{SERVICE}/StoreContact",
            request_serializer=contacts_contact_pb2.StoreContactRequest.SerializeToString,
            response_deserializer=contacts_contact_pb2.StoreContactResponse.FromString,
        )
        stored = await store(
            contacts_contact_pb2.StoreContactRequest(
                contact_id=str(uuid.uuid4()),
                customer_id=str(uuid.uuid4()),
                phone_number=RESOLVE_NUMBER,
                purposes=[contacts_contact_pb2.PURPOSE_PAYEE_LOOKUP],
                consent_reference="bench",
                retention=Duration(seconds=YEAR_S),
            ),
            metadata=_auth(admin_token),
            timeout=CALL_TIMEOUT_S,
        )
        discoverable = channel.unary_unary(
            f"{SERVICE}/SetDiscoverability",
            request_serializer=contacts_directory_pb2.SetDiscoverabilityRequest.SerializeToString,
            response_deserializer=contacts_directory_pb2.SetDiscoverabilityResponse.FromString,
        )
        await discoverable(
            contacts_directory_pb2.SetDiscoverabilityRequest(
                contact_id=stored.contact.contact_id,
                discoverable=True,
                default_account_id=str(uuid.uuid4()),
                request_id=str(uuid.uuid4()),
            ),
            metadata=_auth(admin_token),
            timeout=CALL_TIMEOUT_S,
        )


def _resolve_figures(
    context: BenchContext, address: str, token: str, database_url: str, pids: list[int]
) -> list[Figure]:
    request = contacts_directory_pb2.ResolvePhoneRequest(
        phone_number=RESOLVE_NUMBER, on_behalf_of_principal_id="bench"
    )
    cpu_before_s = processes_cpu_s(pids)
    result = run_grpc_unary(
        context.h2load_binary(),
        address=address,
        method=f"{SERVICE}/ResolvePhone",
        request=request.SerializeToString(),
        connections=H2LOAD_CONNECTIONS,
        streams_per_connection=IN_FLIGHT // H2LOAD_CONNECTIONS,
        duration_s=DURATION_S,
        warm_up_s=WARM_UP_S,
        headers=(f"authorization: Bearer {token}",),
    )
    cpu_s = processes_cpu_s(pids) - cpu_before_s
    # h2load counts HTTP 200s; every real hit appended one RESOLVE access-log entry (warm-up included).
    logged = asyncio.run(_count(database_url, "SELECT count(*) FROM access_log WHERE action = 2"))
    if logged < result.succeeded:
        raise BenchError(f"h2load counted {result.succeeded} resolves but only {logged} were logged as hits")
    print(
        f"  resolve: {result.succeeded} calls, {result.failed + result.errored} failed, {logged} access-log entries"
    )
    return [
        Figure(
            name="contacts.resolve_per_s",
            value=round(result.requests_per_s, 1),
            unit="resolves/s",
            target="≥ 2,000",
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
        ),
        Figure(
            name="contacts.resolve_cpu_us",
            value=round(cpu_s * 1e6 / max(1, logged)),
            unit="µs of server CPU per resolve answered at 64 in flight (both processes)",
            target="report (2 cores ÷ this = the ceiling)",
            p50_ms=None,
            p99_ms=None,
        ),
    ]


async def _count(database_url: str, sql: str) -> int:
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        return int(await database.fetchval(sql))
    finally:
        await database.close()


def _store_request(index: int) -> bytes:
    # Distinct, valid Chinese mobile numbers; a new customer (and so a new data key) per call, as at onboarding.
    return contacts_contact_pb2.StoreContactRequest(
        contact_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        phone_number=f"+86139{index:08d}",
        purposes=[contacts_contact_pb2.PURPOSE_TRANSACTION_ALERTS],
        consent_reference="bench",
        retention=Duration(seconds=YEAR_S),
    ).SerializeToString()


async def _store_figure(address: str, token: str, database_url: str) -> Figure:
    before = await _count(database_url, "SELECT count(*) FROM contact")
    latencies_us: list[float] = []
    counter = iter(range(10**8))
    failures = 0
    async with grpc.aio.insecure_channel(address) as channel:
        store = channel.unary_unary(
            f"{SERVICE}/StoreContact", request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
        )
        metadata = _auth(token)

        async def worker(stop_at: float, record: bool) -> None:
            nonlocal failures
            while time.monotonic() < stop_at:
                began = time.perf_counter()
                try:
                    await store(_store_request(next(counter)), metadata=metadata, timeout=CALL_TIMEOUT_S)
                except grpc.aio.AioRpcError:
                    failures += 1
                    continue
                if record:
                    latencies_us.append((time.perf_counter() - began) * 1_000_000)

        warm_until = time.monotonic() + WARM_UP_S
        await asyncio.gather(*(worker(warm_until, False) for _ in range(IN_FLIGHT)))
        began = time.monotonic()
        await asyncio.gather(*(worker(began + DURATION_S, True) for _ in range(IN_FLIGHT)))
        elapsed_s = time.monotonic() - began
    stored = await _count(database_url, "SELECT count(*) FROM contact") - before
    if stored < len(latencies_us):
        raise BenchError(f"the client counted {len(latencies_us)} stores but only {stored} contacts were written")
    print(
        f"  store: {len(latencies_us)} calls measured, {failures} failed, {stored} contacts written (incl. warm-up)"
    )
    p50_ms, p99_ms = p50_p99_ms(latencies_us)
    return Figure(
        name="contacts.store_per_s",
        value=round(len(latencies_us) / elapsed_s, 1),
        unit="stores/s (Python client on the same cores)",
        target="≥ 800",
        p50_ms=p50_ms,
        p99_ms=p99_ms,
    )


SECTION = register(
    Section(
        name="contacts",
        summary="vault ResolvePhone (h2load) and StoreContact (grpc.aio client) at 64 in flight",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
