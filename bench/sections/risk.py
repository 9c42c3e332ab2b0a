"""``risk.assess_per_s`` (Assess/s at 64 in flight) and ``risk.assess_p99_ms_at_500`` (p99 at 500 requests/s),
driven by h2load against a real risk server process (``bench/risk_server.py``) on the bench's Postgres and Redis,
with a pre-minted platform service token in the headers.

Both measure **new evaluations**: h2load repeats one request body, whose assessment id and accounts are the
all-zero SENTINEL; the bench's risk server replaces them (a fresh UUIDv7, one of 200 accounts whose windows were
seeded with 2,000 real ledger event envelopes, with its usual payee) before the service sees the call, so every
call is the full path — token, the one Redis round trip for features and versions, features, anomaly score, rules,
the decision stored (SET NX), the record queued for the batched writer. Afterwards the server's metrics must show
every counted call OK, and the assessments table a row for every OK call.

``risk.assess_cpu_us`` is the servers' CPU time over the 64-in-flight run per call answered OK: unlike calls per
second it hardly moves when other work shares the cores.

``risk.assess_replay_per_s`` keeps the earlier figure for comparison: one assessment id again and again, i.e. the
idempotent replay path (token, the Redis read, the stored answer).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import grpc
import redis.asyncio as redis_asyncio

from bench.context import BenchContext
from bench.cpu import processes_cpu_s
from bench.databases import recreate_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import H2loadResult, run_grpc_unary
from bench.registry import Section, register
from bench.risk_server import SENTINEL, fresh_pairs
from devstack.databases import with_database
from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.testing import SigningKey
from services.risk.config import RiskConfig
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_events_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

DATABASE = "bench_risk"
METHOD = "/wallet.risk.v1.RiskService/Assess"
START_TIMEOUT_S = 90.0
CONNECT_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
# 64 in flight: 4 connections x 16 streams.
THROUGHPUT_CONNECTIONS = 4
THROUGHPUT_STREAMS = 16
# 500 requests/s: 5 connections paced at 100 requests/s each.
PACED_CONNECTIONS = 5
PACED_RPS_PER_CONNECTION = 100
DURATION_S = 10
WARM_UP_S = 2
SEED_ACCOUNTS = 200
SEED_EVENTS_PER_ACCOUNT = 10
SEED_TIMEOUT_S = 60.0
RECORD_WAIT_S = 10.0
# Server processes sharing the port (GRPC_SO_REUSEPORT): one Python process serves from one core at most.
RISK_PROCESSES = int(os.environ.get("BENCH_RISK_PROCESSES", "2"))
# Counts that must appear in the server's metrics for every call h2load counted.
_HANDLED = re.compile(r"^wallet_grpc_server_handled_total\{(?P<labels>[^}]*)\} (?P<count>[\d.e+]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def run(context: BenchContext) -> list[Figure]:
    h2load = context.h2load_binary()
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(recreate_database(context.postgres_server_url, DATABASE))
    key = SigningKey()
    organization_id = str(uuid.uuid4())
    token = key.mint(pty="service", roles=[], scope="risk.assessments.assess", org=organization_id)
    work = context.work_dir / "risk"
    work.mkdir(parents=True, exist_ok=True)
    jwks_file = work / "jwks.json"
    jwks_file.write_text(json.dumps([key.public_jwk]), encoding="utf-8")
    events_stream = f"bench.ledger.v1.events.{uuid.uuid4().hex[:8]}"
    port = _free_port()
    port_files = [work / f"port-{index}" for index in range(RISK_PROCESSES)]
    servers: list[subprocess.Popen[bytes]] = []
    for port_file in port_files:
        port_file.unlink(missing_ok=True)
        servers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.risk_server",
                    f"--database-url={database_url}",
                    f"--redis-url={context.redis_url()}",
                    f"--jwks-file={jwks_file}",
                    f"--port-file={port_file}",
                    f"--events-stream={events_stream}",
                    f"--fresh-accounts={SEED_ACCOUNTS}",
                    f"--port={port}",
                ],
                cwd=context.repo_dir,
                env={**os.environ, "PYTHONPATH": str(context.repo_dir)},
            )
        )
    headers = (f"authorization: Bearer {token}",)
    try:
        metrics_ports = [_wait_for_ports(server, file)[1] for server, file in zip(servers, port_files, strict=True)]
        asyncio.run(_seed_windows(context.redis_url(), events_stream, organization_id))
        fresh_body = _fresh_request().SerializeToString()
        cpu_before_s, ok_before = processes_cpu_s(server.pid for server in servers), _check_all_ok(metrics_ports, [])
        throughput = _h2load(h2load, port, fresh_body, headers)
        cpu_per_call_us = (
            (processes_cpu_s(server.pid for server in servers) - cpu_before_s)
            * 1e6
            / max(1, _check_all_ok(metrics_ports, []) - ok_before)
        )
        paced = _h2load(h2load, port, fresh_body, headers, paced=True)
        fresh_ok = _check_all_ok(metrics_ports, [throughput, paced])
        asyncio.run(_check_recorded(database_url, organization_id, fresh_ok))
        replayed_request = _request()
        asyncio.run(_prime(port, token, replayed_request))
        replay = _h2load(h2load, port, replayed_request.SerializeToString(), headers)
        _check_all_ok(metrics_ports, [throughput, paced, replay])
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
        asyncio.run(_drop_stream(context.redis_url(), events_stream))
    print(f"  risk: {fresh_ok} fresh Assess calls answered OK, each recorded; {replay.succeeded} replays OK")
    return [
        Figure(
            name="risk.assess_per_s",
            value=round(throughput.requests_per_s, 1),
            unit="Assess/s at 64 in flight, every call a new evaluation",
            target="≥ 2,000",
            p50_ms=throughput.p50_ms,
            p99_ms=throughput.p99_ms,
        ),
        Figure(
            name="risk.assess_p99_ms_at_500",
            value=paced.p99_ms if paced.p99_ms is not None else float("nan"),
            unit="ms, p99 at 500 new evaluations/s",
            target="≤ 10",
            p50_ms=paced.p50_ms,
            p99_ms=paced.p99_ms,
        ),
        Figure(
            name="risk.assess_cpu_us",
            value=round(cpu_per_call_us),
            unit="µs of server CPU per new evaluation answered OK at 64 in flight (all risk processes)",
            target="report (2 cores ÷ this = the ceiling)",
            p50_ms=None,
            p99_ms=None,
        ),
        Figure(
            name="risk.assess_replay_per_s",
            value=round(replay.requests_per_s, 1),
            unit="Assess/s at 64 in flight, idempotent replays of one assessment id",
            target="report",
            p50_ms=replay.p50_ms,
            p99_ms=replay.p99_ms,
        ),
    ]


def _h2load(h2load: Path, port: int, body: bytes, headers: tuple[str, ...], *, paced: bool = False) -> H2loadResult:
    return run_grpc_unary(
        h2load,
        address=f"127.0.0.1:{port}",
        method=METHOD,
        request=body,
        connections=PACED_CONNECTIONS if paced else THROUGHPUT_CONNECTIONS,
        streams_per_connection=1 if paced else THROUGHPUT_STREAMS,
        duration_s=DURATION_S,
        warm_up_s=WARM_UP_S,
        headers=headers,
        requests_per_s_per_connection=PACED_RPS_PER_CONNECTION if paced else None,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _fresh_request() -> risk_assessments_pb2.AssessRequest:
    """SENTINEL ids: the bench's risk server gives each call a new assessment id and a seeded account pair."""
    request = _request()
    request.assessment_id = SENTINEL
    request.context.transfer_id = SENTINEL
    request.context.debit_account_id = SENTINEL
    request.context.credit_account_id = SENTINEL
    return request


async def _seed_windows(redis_url: str, stream: str, organization_id: str) -> list[list[str]]:
    """Posted-transfer envelopes on the bench's event stream: each of SEED_ACCOUNTS accounts pays its usual payee
    SEED_EVENTS_PER_ACCOUNT times (1,000-2,999 minor units over the last hour). Returns the (account, payee) pairs
    once risk has consumed them all."""
    client = redis_asyncio.Redis.from_url(redis_url)
    accounts = [debit for debit, _ in fresh_pairs(SEED_ACCOUNTS)]
    try:
        async with client.pipeline(transaction=False) as pipe:
            for index in range(SEED_ACCOUNTS * SEED_EVENTS_PER_ACCOUNT):
                debit, credit = _pair(accounts, index % SEED_ACCOUNTS)
                amount = money_pb2.Money(currency="EUR", amount_minor=1_000 + (index * 37) % 2_000)
                posted = ledger_events_pb2.TransferPosted(
                    transfer=ledger_events_pb2.TransferFacts(
                        transfer_id=str(uuid.uuid4()), debit_account_id=debit, credit_account_id=credit, amount=amount
                    ),
                    posted_amount=amount,
                )
                posted.posted_at.FromSeconds(int(time.time()) - index % 3600)
                envelope = make_envelope(
                    event_type_payload=posted, organization_id=organization_id, partition_key=debit
                )
                pipe.xadd(stream, {STREAM_ENTRY_FIELD: envelope.SerializeToString()})
            await pipe.execute()
        deadline = time.monotonic() + SEED_TIMEOUT_S
        while time.monotonic() < deadline:
            groups = await client.xinfo_groups(stream)
            ours = [g for g in groups if g["name"].decode() == RiskConfig().consumer_group]
            # XINFO GROUPS reports `lag` only from Redis 7; the embedded Redis is 6.2, so compare ids there.
            last_id = (await client.xinfo_stream(stream))["last-generated-id"]
            if ours and ours[0]["last-delivered-id"] == last_id and ours[0]["pending"] == 0:
                return [list(_pair(accounts, index)) for index in range(SEED_ACCOUNTS)]
            await asyncio.sleep(0.2)
        raise BenchError(f"risk did not consume the seeded ledger events within {SEED_TIMEOUT_S:.0f} s")
    finally:
        await client.aclose()


def _pair(accounts: list[str], index: int) -> tuple[str, str]:
    return accounts[index], accounts[(index + 1) % len(accounts)]


async def _drop_stream(redis_url: str, stream: str) -> None:
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        await client.delete(stream)
    finally:
        await client.aclose()


async def _check_recorded(database_url: str, organization_id: str, calls: int) -> None:
    """Every fresh call answered OK must become a row (the recorder writes within a flush interval)."""
    connection = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        deadline = time.monotonic() + RECORD_WAIT_S
        recorded = 0
        while time.monotonic() < deadline:
            recorded = await connection.fetchval(
                "SELECT count(*) FROM assessments WHERE organization_id = $1", uuid.UUID(organization_id)
            )
            if recorded >= calls:
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    raise BenchError(f"risk answered {calls} fresh Assess calls OK but only {recorded} were recorded")


def _request() -> risk_assessments_pb2.AssessRequest:
    return risk_assessments_pb2.AssessRequest(
        assessment_id=str(uuid.uuid4()),
        context=risk_assessments_pb2.AssessmentContext(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=str(uuid.uuid4()),
            credit_account_id=str(uuid.uuid4()),
            amount=money_pb2.Money(currency="EUR", amount_minor=12_345),
            channel=risk_assessments_pb2.CHANNEL_MOBILE_APP,
            device_id="bench-device",
            ip_address="198.51.100.7",
        ),
    )


def _wait_for_ports(server: subprocess.Popen[bytes], port_file: Path) -> tuple[int, int]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the bench's risk server exited with code {server.returncode}")
        if port_file.exists() and port_file.read_text(encoding="utf-8").strip():
            port, metrics_port = port_file.read_text(encoding="utf-8").split()
            return int(port), int(metrics_port)
        time.sleep(0.1)
    raise BenchError(f"the bench's risk server did not start within {START_TIMEOUT_S:.0f} s")


async def _prime(port: int, token: str, request: risk_assessments_pb2.AssessRequest) -> None:
    """One real Assess (the full path: rules, features, record) so h2load's replays have a decision to return."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = risk_service_pb2_grpc.RiskServiceStub(channel)
        await stub.Assess(request, metadata=(("authorization", f"Bearer {token}"),), timeout=CONNECT_TIMEOUT_S)


def _check_all_ok(metrics_ports: list[int], results: list[H2loadResult]) -> int:
    """Checks that every call h2load counted was answered OK (summed over the server processes); returns the OK
    count."""
    text = ""
    for metrics_port in metrics_ports:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port}/metrics", timeout=CONNECT_TIMEOUT_S
        ) as response:
            text += response.read().decode()
    handled: dict[str, float] = {}
    for match in _HANDLED.finditer(text):
        labels = dict(_LABEL.findall(match.group("labels")))
        if labels.get("grpc_method") == "Assess":
            handled[labels["grpc_code"]] = handled.get(labels["grpc_code"], 0.0) + float(match.group("count"))
    # CANCELLED is h2load abandoning its last in-flight calls when its time is up, not an answer the server gave.
    failures = {code: count for code, count in handled.items() if code not in ("OK", "CANCELLED") and count > 0}
    if failures:
        raise BenchError(f"Assess answered errors under load: {failures}")
    counted = sum(result.succeeded for result in results)
    if handled.get("OK", 0.0) < counted:
        raise BenchError(f"h2load counted {counted} calls but the server answered only {handled.get('OK', 0)} OK")
    return int(handled.get("OK", 0.0))


SECTION = register(
    Section(
        name="risk",
        summary="Assess/s at 64 in flight and Assess p99 at 500 requests/s (h2load against a risk server process)",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
