"""``risk.assess_per_s`` (Assess/s at 64 in flight) and ``risk.assess_p99_ms_at_500`` (p99 at 500 requests/s),
driven by h2load against a real risk server process (``bench/risk_server.py``) on the bench's Postgres and Redis,
with a pre-minted platform service token in the headers.

h2load sends one request body again and again, and Assess is idempotent by ``assessment_id``: after the first call
every call is a replay, which still authenticates the token, reads the account's features, the rules and lists
versions and the stored decision in the one pipelined Redis round trip, and answers the first decision. So these
figures measure the hot read path under load, not the rule evaluation (which costs tens of microseconds more, and
a record queued for the batched writer). The server's own metrics are checked afterwards: every call h2load
counted must have answered OK.

So a third figure, ``risk.assess_fresh_per_s``, drives calls that all differ (a new assessment id each, over 200
accounts paying their usual payees, windows seeded with real ledger event envelopes) from a Python client in its own process
(``bench/risk_load.py``): the full path, measured low because the client takes CPU from the server. Afterwards the
assessments table must hold a row for every call the client counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
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
from bench.databases import recreate_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import H2loadResult, run_grpc_unary
from bench.registry import Section, register
from devstack.databases import with_database
from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.testing import SigningKey
from services.risk.config import RiskConfig
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_events_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

DATABASE = "bench_risk"
METHOD = "/wallet.risk.v1.RiskService/Assess"
START_TIMEOUT_S = 30.0
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
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    events_stream = f"bench.ledger.v1.events.{uuid.uuid4().hex[:8]}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.risk_server",
            f"--database-url={database_url}",
            f"--redis-url={context.redis_url()}",
            f"--jwks-file={jwks_file}",
            f"--port-file={port_file}",
            f"--events-stream={events_stream}",
        ],
        cwd=context.repo_dir,
        env={**os.environ, "PYTHONPATH": str(context.repo_dir)},
    )
    try:
        port, metrics_port = _wait_for_ports(server, port_file)
        assess = _request()
        asyncio.run(_prime(port, token, assess))
        request = assess.SerializeToString()
        headers = (f"authorization: Bearer {token}",)
        throughput = run_grpc_unary(
            h2load,
            address=f"127.0.0.1:{port}",
            method=METHOD,
            request=request,
            connections=THROUGHPUT_CONNECTIONS,
            streams_per_connection=THROUGHPUT_STREAMS,
            duration_s=DURATION_S,
            warm_up_s=WARM_UP_S,
            headers=headers,
        )
        paced = run_grpc_unary(
            h2load,
            address=f"127.0.0.1:{port}",
            method=METHOD,
            request=request,
            connections=PACED_CONNECTIONS,
            streams_per_connection=1,
            duration_s=DURATION_S,
            warm_up_s=WARM_UP_S,
            headers=headers,
            requests_per_s_per_connection=PACED_RPS_PER_CONNECTION,
        )
        _check_all_ok(metrics_port, [throughput, paced])
        pairs = asyncio.run(_seed_windows(context.redis_url(), events_stream, organization_id))
        fresh = _run_fresh_load(context, work, port, token, pairs)
        asyncio.run(_check_recorded(database_url, organization_id, int(fresh["calls"])))
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
        asyncio.run(_drop_stream(context.redis_url(), events_stream))
    print(
        f"  risk: {throughput.succeeded} + {paced.succeeded} replayed Assess calls, all OK per the server's metrics"
    )
    print(f"  risk: {int(fresh['calls'])} fresh Assess calls, each recorded ({int(fresh['errors'])} errors)")
    return [
        Figure(
            name="risk.assess_per_s",
            value=round(throughput.requests_per_s, 1),
            unit="Assess/s at 64 in flight (idempotent replays: hot read path)",
            target="≥ 2,000",
            p50_ms=throughput.p50_ms,
            p99_ms=throughput.p99_ms,
        ),
        Figure(
            name="risk.assess_fresh_per_s",
            value=round(fresh["per_s"], 1),
            unit="Assess/s at 64 in flight, every call new (Python client: a lower bound)",
            target="report (≥ 2,000 is the goal)",
            p50_ms=fresh["p50_ms"],
            p99_ms=fresh["p99_ms"],
        ),
        Figure(
            name="risk.assess_p99_ms_at_500",
            value=paced.p99_ms if paced.p99_ms is not None else float("nan"),
            unit="ms, p99 at 500 requests/s",
            target="≤ 10",
            p50_ms=paced.p50_ms,
            p99_ms=paced.p99_ms,
        ),
    ]


async def _seed_windows(redis_url: str, stream: str, organization_id: str) -> list[list[str]]:
    """Posted-transfer envelopes on the bench's event stream: each of SEED_ACCOUNTS accounts pays its usual payee
    SEED_EVENTS_PER_ACCOUNT times (1,000-2,999 minor units over the last hour). Returns the (account, payee) pairs
    once risk has consumed them all."""
    client = redis_asyncio.Redis.from_url(redis_url)
    accounts = [str(uuid.uuid4()) for _ in range(SEED_ACCOUNTS)]
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


def _run_fresh_load(
    context: BenchContext, work: Path, port: int, token: str, pairs: list[list[str]]
) -> dict[str, float]:
    token_file = work / "token"
    token_file.write_text(token, encoding="utf-8")
    pairs_file = work / "pairs.json"
    pairs_file.write_text(json.dumps(pairs), encoding="utf-8")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.risk_load",
            f"--port={port}",
            f"--token-file={token_file}",
            f"--pairs-file={pairs_file}",
            f"--in-flight={THROUGHPUT_CONNECTIONS * THROUGHPUT_STREAMS}",
            f"--duration-s={DURATION_S}",
        ],
        cwd=context.repo_dir,
        env={**os.environ, "PYTHONPATH": str(context.repo_dir)},
        capture_output=True,
        text=True,
        timeout=DURATION_S + START_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"the risk load generator failed: {completed.stderr.strip()[-400:]}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise BenchError(f"{int(result['errors'])} fresh Assess calls failed")
    return result


async def _check_recorded(database_url: str, organization_id: str, calls: int) -> None:
    """Every fresh call the client counted must become a row (the recorder writes within a flush interval)."""
    connection = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        deadline = time.monotonic() + RECORD_WAIT_S
        recorded = 0
        while time.monotonic() < deadline:
            recorded = await connection.fetchval(
                "SELECT count(*) FROM assessments WHERE organization_id = $1", uuid.UUID(organization_id)
            )
            # + the primed call, whose id h2load then replayed.
            if recorded >= calls + 1:
                return
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    raise BenchError(f"the client counted {calls} fresh Assess calls but only {recorded - 1} were recorded")


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


def _check_all_ok(metrics_port: int, results: list[H2loadResult]) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=CONNECT_TIMEOUT_S) as response:
        text = response.read().decode()
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


SECTION = register(
    Section(
        name="risk",
        summary="Assess/s at 64 in flight and Assess p99 at 500 requests/s (h2load against a risk server process)",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
