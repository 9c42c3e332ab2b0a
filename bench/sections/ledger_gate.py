"""``ledger.gate_on_vs_off``: single transfers/s with the risk gate on ÷ off (DESIGN.md §8, aim ≥ 0.8).

The same ledger bench server as the ``ledger`` section (``python -m bench.sections.ledger serve``: the real service,
a static JWKS, sentinel ids replaced by fresh ones) on one database, started four times — gate off, on, on, off
(ABBA, so a machine whose load drifts during the run biases neither side) — each time measured with h2load at 64
transfers in flight between random OPERATING accounts of the pool (out of an operating account: every transfer is
assessed). With the gate on, the ledger calls a real risk server process (``bench/risk_server.py``, default rules,
the production 50 ms deadline) with a pre-minted platform service token.

Honesty checks: the ledger must have written exactly the transfers it answered OK (as in the ``ledger`` section),
and with the gate on the bench counts how those transfers were recorded — assessed, or failed open because risk
was late. Failed-open transfers skipped risk, so the section reports their share next to the figure. Risk's feature
windows stay empty here (its consumer reads its own stream, not this ledger's), so rules see no velocity: every
assessment is a real evaluation (features read, rules, score, record) that answers ALLOW.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as redis_asyncio

from bench.context import BenchContext
from bench.databases import fresh_service_database, recreate_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import H2loadResult, run_grpc_unary
from bench.registry import Section, register
from bench.sections.ledger import (
    CONNECTIONS,
    DURATION_S,
    ORGANIZATION_ID,
    SENTINEL,
    SERVICE,
    STREAMS_PER_CONNECTION,
    WARM_UP_S,
    _expect,
    _free_port,
    _ok_calls,
    _open_accounts,
    _settled_transfer_count,
    _wait_drained,
    _wait_serving,
    pool_account_ids,
)
from bench.sections.risk import _wait_for_ports
from devstack.databases import with_database

if TYPE_CHECKING:
    from services.ledger.risk_gate import RiskGateSetup

LEDGER_DATABASE = "bench_ledger_gate"
RISK_DATABASE = "bench_ledger_gate_risk"
TOKEN_LIFETIME_S = 3_600
STOP_TIMEOUT_S = 30.0
ORDER = ("off", "on", "on", "off")
PROBE_TRANSFERS = 20
ISOLATED_REDIS_DB = 13
# Environment of the ledger bench server: when set, it wires the risk gate (see ``bench_risk_gate``).
RISK_ADDR_VARIABLE = "BENCH_RISK_ADDR"
RISK_TOKEN_VARIABLE = "BENCH_RISK_TOKEN"  # noqa: S105 -- the variable's name, not a secret


class _StaticServiceToken:
    """The ledger's platform token for risk, minted by the bench (there is no auth service in the bench)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token_for(self, organization_id: str) -> str:
        return self._token


def bench_risk_gate() -> RiskGateSetup | None:
    """The ledger bench server's risk gate (a ``RiskGateSetup``), or None when the bench runs it with the gate off."""
    from services.ledger.risk_gate import RiskGateConfig, RiskGateSetup

    risk_addr = os.environ.get(RISK_ADDR_VARIABLE)
    if not risk_addr:
        return None
    return RiskGateSetup(RiskGateConfig(), risk_addr, _StaticServiceToken(os.environ[RISK_TOKEN_VARIABLE]))


def _isolated_redis_url(url: str) -> str:
    """The bench's Redis in a logical database of its own: on a Redis shared with running suites, their risk
    consumers would read this ledger's events from ``wallet.ledger.v1.events`` and fill the bench tenant's feature
    windows (velocity rules would then refuse the bench's transfers)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url  # the embedded Redis (a unix socket) is the bench's own
    return urlunsplit((parts.scheme, parts.netloc, f"/{ISOLATED_REDIS_DB}", parts.query, parts.fragment))


async def _empty_redis(redis_url: str) -> None:
    """A clean slate (no windows or events left by an earlier run) in the bench's own logical database."""
    if redis_url.startswith(("redis://", "rediss://")):
        client = redis_asyncio.Redis.from_url(redis_url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()


def run(context: BenchContext) -> list[Figure]:
    from services.kit.testing import SigningKey

    h2load = context.h2load_binary()
    redis_url = _isolated_redis_url(context.redis_url())
    asyncio.run(_empty_redis(redis_url))
    key = SigningKey()
    now = int(time.time())
    owner = key.mint(org=ORGANIZATION_ID, roles=["owner"], exp=now + TOKEN_LIFETIME_S)
    service = key.mint(
        org=ORGANIZATION_ID, pty="service", roles=[], scope="risk.assessments.assess", exp=now + TOKEN_LIFETIME_S
    )
    ledger_url = with_database(context.postgres_server_url, LEDGER_DATABASE)
    asyncio.run(fresh_service_database(context.postgres_server_url, ledger_url, LEDGER_DATABASE, "ledger"))
    risk_url = with_database(context.postgres_server_url, RISK_DATABASE)
    asyncio.run(recreate_database(context.postgres_server_url, RISK_DATABASE))
    work = context.work_dir / "ledger_gate"
    work.mkdir(parents=True, exist_ok=True)
    risk = _start_risk(context, work, risk_url, redis_url, key.public_jwk)
    try:
        risk_port, _ = _wait_for_ports(risk, work / "risk-port")
        rates: dict[str, list[H2loadResult]] = {"off": [], "on": []}
        checks_on: list[dict[str, int]] = []
        for index, gate in enumerate(ORDER):
            risk_env = (
                {RISK_ADDR_VARIABLE: f"127.0.0.1:{risk_port}", RISK_TOKEN_VARIABLE: service} if gate == "on" else {}
            )
            result, checks = _measure_once(
                h2load, work, ledger_url, redis_url, key.public_jwk, owner, risk_env, index
            )
            rates[gate].append(result)
            if gate == "on":
                checks_on.append(checks)
    finally:
        risk.terminate()
        try:
            risk.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            risk.kill()
    failed_open = sum(c.get("FAILED_OPEN", 0) for c in checks_on)
    assessed = sum(c.get("ASSESSED", 0) for c in checks_on)
    off = sum(r.requests_per_s for r in rates["off"]) / len(rates["off"])
    on = sum(r.requests_per_s for r in rates["on"]) / len(rates["on"])
    print(f"  gate off {off:.0f} transfers/s, gate on {on:.0f} transfers/s (means of {ORDER})")
    p50s = [r.p50_ms for r in rates["on"] if r.p50_ms is not None]
    p99s = [r.p99_ms for r in rates["on"] if r.p99_ms is not None]
    return [
        Figure(
            "ledger.gate_on_vs_off",
            round(on / off, 3),
            f"ratio ({failed_open * 100 // max(1, failed_open + assessed)} % of gated transfers failed open)",
            "≥ 0.8",
            round(sum(p50s) / len(p50s), 2) if p50s else None,
            round(sum(p99s) / len(p99s), 2) if p99s else None,
        )
    ]


def _start_risk(
    context: BenchContext, work: Path, database_url: str, redis_url: str, jwk: dict[str, str]
) -> subprocess.Popen[bytes]:
    jwks_file = work / "jwks.json"
    jwks_file.write_text(json.dumps([jwk]), encoding="utf-8")
    port_file = work / "risk-port"
    port_file.unlink(missing_ok=True)
    log = (work / "risk-server.log").open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.risk_server",
            f"--database-url={database_url}",
            f"--redis-url={redis_url}",
            f"--jwks-file={jwks_file}",
            f"--port-file={port_file}",
            f"--events-stream=bench.ledger_gate.events.{uuid.uuid4().hex[:8]}",
        ],
        cwd=context.repo_dir,
        env={**os.environ, "PYTHONPATH": str(context.repo_dir)},
        stdout=log,
        stderr=log,
    )


def _measure_once(
    h2load: Path,
    work: Path,
    database_url: str,
    redis_url: str,
    jwk: dict[str, str],
    owner: str,
    risk_env: dict[str, str],
    index: int,
) -> tuple[H2loadResult, dict[str, int]]:
    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_transfers_pb2 as pb

    grpc_port, metrics_port = _free_port(), _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in (RISK_ADDR_VARIABLE, RISK_TOKEN_VARIABLE)},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GRPC_PORT": str(grpc_port),
        "METRICS_PORT": str(metrics_port),
        "BENCH_LEDGER_JWK": json.dumps(jwk),
        "LOG_LEVEL": "WARNING",
        **risk_env,
    }
    address = f"127.0.0.1:{grpc_port}"
    body = pb.CreateTransferRequest(
        transfer_id=SENTINEL,
        debit_account_id=SENTINEL,
        credit_account_id=SENTINEL,
        amount=money_pb2.Money(currency="EUR", amount_minor=1),
    ).SerializeToString()
    with (work / f"ledger-server-{index}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.sections.ledger", "serve"], env=environment, stdout=log, stderr=log
        )
        try:
            _wait_serving(address, process)
            asyncio.run(_open_accounts(address, owner))  # idempotent: the same accounts every time
            if risk_env:
                asyncio.run(_probe_wiring(address, owner))
            started = time.time()
            count_before = _settled_transfer_count(database_url)
            result = run_grpc_unary(
                h2load,
                address=address,
                method=f"{SERVICE}/CreateTransfer",
                request=body,
                connections=CONNECTIONS,
                streams_per_connection=STREAMS_PER_CONNECTION,
                duration_s=DURATION_S,
                warm_up_s=WARM_UP_S,
                headers=(f"authorization: Bearer {owner}",),
            )
            _wait_drained([metrics_port])
            ok = _ok_calls([metrics_port], "CreateTransfer")
            cancelled = _ok_calls([metrics_port], "CreateTransfer", code="CANCELLED")
            created = _settled_transfer_count(database_url) - count_before
            _expect(created, ok, ok + cancelled, "CreateTransfer")
            checks = asyncio.run(_risk_checks_since(database_url, started))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
    gate = "on" if risk_env else "off"
    print(f"  gate {gate}: {result.requests_per_s:.0f} transfers/s, {ok} OK; recorded risk checks {checks}")
    if not risk_env and set(checks) - {"GATE_OFF"}:
        raise BenchError(f"with the gate off transfers were recorded as {checks}")
    return result, checks


async def _probe_wiring(address: str, owner: str) -> None:
    """A few transfers one at a time before the load: at least one must come back assessed, or the gate is not
    reaching risk (under load many may fail open because risk is late, which the load's counts then show)."""
    import grpc

    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_service_pb2_grpc
    from wallet.ledger.v1 import ledger_transfers_pb2 as pb

    accounts = pool_account_ids()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        for attempt in range(PROBE_TRANSFERS):
            response = await stub.CreateTransfer(
                pb.CreateTransferRequest(
                    transfer_id=str(uuid.uuid4()),
                    debit_account_id=accounts[attempt],
                    credit_account_id=accounts[attempt + 1],
                    amount=money_pb2.Money(currency="EUR", amount_minor=1),
                ),
                metadata=(("authorization", f"Bearer {owner}"),),
                timeout=10,
            )
            if response.transfer.risk.check == pb.RISK_CHECK_ASSESSED:
                return
        # (A DENY or STEP_UP_REQUIRED answer would also prove the wiring; with empty windows the rules allow.)
    raise BenchError(f"none of {PROBE_TRANSFERS} probe transfers was assessed: the ledger does not reach risk")


async def _risk_checks_since(database_url: str, started_s: float) -> dict[str, int]:
    names = {0: "GATE_OFF", 1: "NOT_REQUIRED", 2: "ASSESSED", 3: "FAILED_OPEN"}
    database = await asyncpg.connect(database_url)
    try:
        rows = await database.fetch(
            """SELECT risk_check, count(*) AS n FROM transfers
               WHERE organization_id = $1 AND created_at >= to_timestamp($2) GROUP BY risk_check""",
            uuid.UUID(ORGANIZATION_ID),
            started_s,
        )
    finally:
        await database.close()
    return {names.get(r["risk_check"], str(r["risk_check"])): int(r["n"]) for r in rows}


SECTION = register(
    Section(
        name="ledger_gate",
        summary="single transfers/s with the ledger's risk gate on ÷ off (a real risk server, 50 ms deadline)",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
