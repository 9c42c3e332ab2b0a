"""``risk.assess_per_s`` (Assess/s at 64 in flight) and ``risk.assess_p99_ms_at_500`` (p99 at 500 requests/s),
driven by h2load against a real risk server process (``bench/risk_server.py``) on the bench's Postgres and Redis,
with a pre-minted platform service token in the headers.

h2load sends one request body again and again, and Assess is idempotent by ``assessment_id``: after the first call
every call is a replay, which still authenticates the token, reads the account's features, the rules and lists
versions and the stored decision in the one pipelined Redis round trip, and answers the first decision. So these
figures measure the hot read path under load, not the rule evaluation (which costs tens of microseconds more, and
a record queued for the batched writer). The server's own metrics are checked afterwards: every call h2load
counted must have answered OK.
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

from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import H2loadResult, run_grpc_unary
from bench.registry import Section, register
from devstack.databases import with_database
from services.kit.testing import SigningKey
from wallet.common.v1 import money_pb2
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
# Counts that must appear in the server's metrics for every call h2load counted.
_HANDLED = re.compile(r"^wallet_grpc_server_handled_total\{(?P<labels>[^}]*)\} (?P<count>[\d.e+]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def run(context: BenchContext) -> list[Figure]:
    h2load = context.h2load_binary()
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(_fresh_database(context.postgres_server_url))
    key = SigningKey()
    organization_id = str(uuid.uuid4())
    token = key.mint(pty="service", roles=[], scope="risk.assessments.assess", org=organization_id)
    work = context.work_dir / "risk"
    work.mkdir(parents=True, exist_ok=True)
    jwks_file = work / "jwks.json"
    jwks_file.write_text(json.dumps([key.public_jwk]), encoding="utf-8")
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.risk_server",
            f"--database-url={database_url}",
            f"--redis-url={context.redis_url()}",
            f"--jwks-file={jwks_file}",
            f"--port-file={port_file}",
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
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"  risk: {throughput.succeeded} + {paced.succeeded} Assess calls, all OK per the server's metrics")
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
            name="risk.assess_p99_ms_at_500",
            value=paced.p99_ms if paced.p99_ms is not None else float("nan"),
            unit="ms, p99 at 500 requests/s",
            target="≤ 10",
            p50_ms=paced.p50_ms,
            p99_ms=paced.p99_ms,
        ),
    ]


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


async def _fresh_database(server_url: str) -> None:
    server = await asyncpg.connect(server_url, timeout=CONNECT_TIMEOUT_S)
    try:
        await server.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await server.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await server.close()


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
    failures = {code: count for code, count in handled.items() if code != "OK" and count > 0}
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
