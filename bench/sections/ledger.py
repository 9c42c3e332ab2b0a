"""The ledger's figures (DESIGN.md §8): single transfers, batches of 100, a hot account, and statement latency at
1M postings, each against ``baseline.sql_transfer_per_s`` measured in the same run.

The ledger runs as ``SERVER_PROCESSES`` processes sharing one gRPC port with SO_REUSEPORT (``python -m
bench.sections.ledger serve``: the real service with a static JWKS instead of auth) on a fresh database — one
Python process serves from one core, so a deployment runs several per pod (services/ledger/README.md). h2load
sends one fixed request body, so the bench's servicer subclass replaces sentinel ids (the all-zero UUID) before the ledger sees them: a fresh UUIDv7 for ``transfer_id`` and
``batch_id``, and a random account of the pool for a sentinel debit or credit account. The ledger's own code is the
same as in production. After each run the bench checks that the ledger holds exactly as many new transfers as the
server answered OK (the kit's per-method metrics) and that CheckInvariants finds the books intact.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.context import BenchContext
from bench.databases import fresh_service_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import H2loadResult, run_grpc_unary
from bench.registry import Section, register
from devstack.databases import with_database

DATABASE = "bench_ledger"
SENTINEL = "00000000-0000-0000-0000-000000000000"
NAMESPACE = uuid.UUID("6f1c5a52-2d0e-4b7e-9a55-0b8c1e7d4a10")
ORGANIZATION_ID = str(uuid.uuid5(NAMESPACE, "org"))
POOL_ACCOUNTS = 1_000
HOT_ACCOUNT_ID = str(uuid.uuid5(NAMESPACE, "hot"))
# Overdraft line of every pool account, so random transfers never run dry (the balance rule is still evaluated).
CREDIT_LIMIT_MINOR = 10**15
# Ledger server processes sharing the gRPC port (GRPC_SO_REUSEPORT): the deployment choice the figures measure.
SERVER_PROCESSES = 2
# The kernel spreads connections (not calls) over the processes, so enough connections to even them out.
CONNECTIONS = 8
STREAMS_PER_CONNECTION = 8  # 64 in flight
BATCH_CONNECTIONS = 8
BATCH_STREAMS = 1  # 8 batches of 100 in flight, one per connection
PROCESSES_UNIT = f"ratio ({SERVER_PROCESSES} ledger processes sharing the port)"
DURATION_S = 10
WARM_UP_S = 2
STATEMENT_DURATION_S = 5
STATEMENT_SMALL_POSTINGS = 10_000
STATEMENT_LARGE_POSTINGS = 1_000_000
STATEMENT_PAGE_SIZE = 50
START_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
TOKEN_LIFETIME_S = 3_600
DRAIN_TIMEOUT_S = 30.0
DRAIN_POLL_S = 0.1
# Group commit answers before the bench reads the table; a moment more covers the last commit's visibility.
DRAIN_SETTLE_S = 0.5
SERVICE = "/wallet.ledger.v1.LedgerService"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "services" / "ledger" / "migrations"


def pool_account_ids() -> list[str]:
    return [str(uuid.uuid5(NAMESPACE, f"account-{index}")) for index in range(POOL_ACCOUNTS)]


# --- the server process -------------------------------------------------------------------------------------------


def serve() -> int:
    """The real ledger service with a static JWKS (``BENCH_LEDGER_JWK``) and the sentinel-replacing servicer."""
    import uvloop

    from services.kit.config import load_service_config
    from services.kit.grpc_server import Registration, Runtime
    from services.kit.ids import uuid7
    from services.kit.logs import setup_logging
    from services.kit.service_main import BackgroundJob, ServiceSpec
    from services.kit.service_main import serve as serve_service
    from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER
    from services.kit.token_cache import CachedTokenVerifier
    from services.kit.tokens import StaticJwksSource, TokenVerifier
    from services.ledger.app import LedgerApp
    from services.ledger.jobs import background_jobs
    from services.ledger.server import SERVICE_NAME, LedgerServer
    from wallet.ledger.v1 import ledger_service_pb2_grpc, ledger_transfers_pb2

    accounts = pool_account_ids()

    def fresh(transfer: Any) -> None:
        if transfer.transfer_id == SENTINEL:
            transfer.transfer_id = str(uuid7())
        if transfer.debit_account_id == SENTINEL:
            transfer.debit_account_id = random.choice(accounts)
        while transfer.credit_account_id in (SENTINEL, transfer.debit_account_id):
            transfer.credit_account_id = random.choice(accounts)

    class BenchLedgerServer(LedgerServer):
        async def CreateTransfer(
            self, request: ledger_transfers_pb2.CreateTransferRequest, context: Any
        ) -> ledger_transfers_pb2.CreateTransferResponse:
            fresh(request)
            return await super().CreateTransfer(request, context)

        async def CreateTransferBatch(
            self, request: ledger_transfers_pb2.CreateTransferBatchRequest, context: Any
        ) -> ledger_transfers_pb2.CreateTransferBatchResponse:
            if request.batch_id == SENTINEL:
                request.batch_id = str(uuid7())
            for item in request.transfers:
                fresh(item)
            return await super().CreateTransferBatch(request, context)

    from bench.sections.ledger_gate import bench_risk_gate

    holder: dict[str, LedgerApp] = {}

    def app(runtime: Runtime) -> LedgerApp:
        if "app" not in holder:
            # The gate is off unless the ledger_gate section asks for it (BENCH_RISK_ADDR).
            holder["app"] = LedgerApp(runtime, risk_gate=bench_risk_gate())
        return holder["app"]

    def build(runtime: Runtime) -> list[Registration]:
        servicer = BenchLedgerServer(app(runtime))
        return [Registration(SERVICE_NAME, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, servicer)]

    def jobs(runtime: Runtime) -> list[BackgroundJob]:
        return background_jobs(app(runtime))

    def verifier(runtime: Runtime) -> TokenVerifier:
        jwk = json.loads(os.environ["BENCH_LEDGER_JWK"])
        # The same verification cache as ``python -m services.ledger`` (services/kit/token_cache.py).
        return CachedTokenVerifier(
            StaticJwksSource([jwk]), audience=TEST_AUDIENCE, issuer=TEST_ISSUER, refresh_min_interval_s=0.0
        )

    spec = ServiceSpec(
        name="ledger",
        migrations_dir=MIGRATIONS_DIR,
        build=build,
        verifier=verifier,
        background_jobs=jobs,
    )
    setup_logging("ledger", "WARNING")
    uvloop.run(serve_service(spec, load_service_config("ledger")))
    return 0


# --- the section --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(context: BenchContext) -> list[Figure]:
    from services.kit.testing import SigningKey

    baseline = context.figure("baseline.sql_transfer_per_s").value
    h2load = context.h2load_binary()
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(fresh_service_database(context.postgres_server_url, database_url, DATABASE, "ledger"))
    key = SigningKey()
    grpc_port = _free_port()
    metrics_ports = [_free_port() for _ in range(SERVER_PROCESSES)]
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": context.redis_url(),
        "GRPC_PORT": str(grpc_port),
        "GRPC_SO_REUSEPORT": "true",
        "BENCH_LEDGER_JWK": json.dumps(key.public_jwk),
        "LOG_LEVEL": "WARNING",
    }
    log_path = context.work_dir / "ledger-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    token = key.mint(org=ORGANIZATION_ID, roles=["owner"], exp=now + TOKEN_LIFETIME_S)
    address = f"127.0.0.1:{grpc_port}"
    with log_path.open("w") as log:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.sections.ledger", "serve"],
                env={**environment, "METRICS_PORT": str(metrics_port)},
                stdout=log,
                stderr=log,
            )
            for metrics_port in metrics_ports
        ]
        try:
            for process in processes:
                _wait_serving(address, process)
            for metrics_port, process in zip(metrics_ports, processes, strict=True):
                # The health check above may have reached any of them: wait for each one's own endpoint.
                _wait_metrics(metrics_port, process)
            asyncio.run(_open_accounts(address, token))
            return _measure(context, h2load, address, metrics_ports, token, database_url, baseline)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def _measure(
    context: BenchContext,
    h2load: Path,
    address: str,
    metrics_ports: list[int],
    token: str,
    database_url: str,
    baseline: float,
) -> list[Figure]:
    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_transfers_pb2 as pb

    headers = (f"authorization: Bearer {token}",)

    def transfer(credit: str) -> pb.CreateTransferRequest:
        return pb.CreateTransferRequest(
            transfer_id=SENTINEL,
            debit_account_id=SENTINEL,
            credit_account_id=credit,
            amount=money_pb2.Money(currency="EUR", amount_minor=1),
        )

    def load(method: str, body: bytes, connections: int, streams: int, items_per_call: int) -> H2loadResult:
        ok_before = _ok_calls(metrics_ports, method)
        cancelled_before = _ok_calls(metrics_ports, method, code="CANCELLED")
        count_before = asyncio.run(_transfer_count(database_url))
        result = run_grpc_unary(
            h2load,
            address=address,
            method=f"{SERVICE}/{method}",
            request=body,
            connections=connections,
            streams_per_connection=streams,
            duration_s=DURATION_S,
            warm_up_s=WARM_UP_S,
            headers=headers,
        )
        _wait_drained(metrics_ports)
        ok = _ok_calls(metrics_ports, method) - ok_before
        cancelled = _ok_calls(metrics_ports, method, code="CANCELLED") - cancelled_before
        created = _settled_transfer_count(database_url) - count_before
        print(
            f"  {method}: {result.requests_per_s:.0f} calls/s, {ok} OK and {cancelled} abandoned on the server,"
            f" {created} transfers written"
        )
        # Every OK call (warm-up included) wrote its transfers; beyond those, only calls h2load abandoned at the end
        # of its run (counted CANCELLED) may have committed — group commit finishes what it started.
        _expect(created, ok * items_per_call, (ok + cancelled) * items_per_call, method)
        return result

    spread = load("CreateTransfer", transfer(SENTINEL).SerializeToString(), CONNECTIONS, STREAMS_PER_CONNECTION, 1)
    hot = load("CreateTransfer", transfer(HOT_ACCOUNT_ID).SerializeToString(), CONNECTIONS, STREAMS_PER_CONNECTION, 1)
    batch_body = pb.CreateTransferBatchRequest(
        batch_id=SENTINEL,
        transfers=[
            pb.BatchTransfer(
                transfer_id=SENTINEL,
                debit_account_id=SENTINEL,
                credit_account_id=SENTINEL,
                amount=money_pb2.Money(currency="EUR", amount_minor=1),
            )
            for _ in range(100)
        ],
    ).SerializeToString()
    batches = load("CreateTransferBatch", batch_body, BATCH_CONNECTIONS, BATCH_STREAMS, 100)
    asyncio.run(_check_books(address, token))
    statement = _statement_ratio(h2load, address, headers, database_url)
    return [
        Figure(
            "ledger.single_vs_sql",
            round(spread.requests_per_s / baseline, 3),
            PROCESSES_UNIT,
            "≥ 0.50",
            spread.p50_ms,
            spread.p99_ms,
        ),
        Figure(
            "ledger.batch100_vs_sql",
            round(batches.requests_per_s * 100 / baseline, 3),
            PROCESSES_UNIT,
            "≥ 2.0",
            batches.p50_ms,
            batches.p99_ms,
        ),
        Figure(
            "ledger.hot_vs_spread",
            round(hot.requests_per_s / spread.requests_per_s, 3),
            PROCESSES_UNIT,
            "≥ 0.5",
            hot.p50_ms,
            hot.p99_ms,
        ),
        statement,
    ]


def _expect(created: int, at_least: int, at_most: int, what: str) -> None:
    if not at_least <= created <= at_most:
        raise BenchError(
            f"{what}: the server's answers account for {at_least}..{at_most} transfers but it wrote {created}"
        )


def _metrics_text(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def _wait_metrics(metrics_port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"a ledger server exited with {process.returncode}; see its log in the bench work dir")
        try:
            _metrics_text(metrics_port)
            return
        except OSError:
            time.sleep(0.2)
    raise BenchError(f"a ledger server's metrics endpoint did not answer within {START_TIMEOUT_S:.0f} s")


def _ports(metrics_ports: int | list[int]) -> list[int]:
    return [metrics_ports] if isinstance(metrics_ports, int) else metrics_ports


def _wait_drained(metrics_ports: int | list[int]) -> None:
    """h2load abandons its last calls when its time is up; the server still finishes them (the kit's metrics count
    it CANCELLED, and group commit still writes its transfer), so wait until nothing is in flight."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        in_flight = [
            float(line.rsplit(" ", 1)[1])
            for metrics_port in _ports(metrics_ports)
            for line in _metrics_text(metrics_port).splitlines()
            if line.startswith("wallet_grpc_server_in_flight") and 'service="ledger"' in line
        ]
        if sum(in_flight) == 0:
            time.sleep(DRAIN_SETTLE_S)
            return
        time.sleep(DRAIN_POLL_S)
    raise BenchError(f"the ledger still had calls in flight {DRAIN_TIMEOUT_S:.0f} s after the load stopped")


def _settled_transfer_count(database_url: str) -> int:
    """The transfer count once it stops growing: a batch whose caller went away still commits (it is shielded)."""
    previous = asyncio.run(_transfer_count(database_url))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(DRAIN_SETTLE_S)
        current = asyncio.run(_transfer_count(database_url))
        if current == previous:
            return current
        previous = current
    raise BenchError(f"the ledger was still writing transfers {DRAIN_TIMEOUT_S:.0f} s after the load stopped")


def _ok_calls(metrics_ports: int | list[int], method: str, *, code: str = "OK") -> int:
    """Answers of ``method`` with ``code`` so far, summed over the server processes, from the kit's
    ``wallet_grpc_server_handled_total``."""
    total = 0.0
    for metrics_port in _ports(metrics_ports):
        for line in _metrics_text(metrics_port).splitlines():
            if (
                line.startswith("wallet_grpc_server_handled_total{")
                and f'grpc_method="{method}"' in line
                and f'grpc_code="{code}"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _wait_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(
                    f"the ledger server exited with {process.returncode}; see its log in the bench work dir"
                )
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise BenchError(f"the ledger server did not report SERVING within {START_TIMEOUT_S:.0f} s")


async def _open_accounts(address: str, token: str) -> None:
    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_accounts_pb2 as accounts_pb
    from wallet.ledger.v1 import ledger_service_pb2_grpc

    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        semaphore = asyncio.Semaphore(64)

        async def open_one(account_id: str) -> None:
            async with semaphore:
                await stub.OpenAccount(
                    accounts_pb.OpenAccountRequest(
                        account_id=account_id,
                        kind=accounts_pb.ACCOUNT_KIND_OPERATING,
                        currency="EUR",
                        credit_limit=money_pb2.Money(currency="EUR", amount_minor=CREDIT_LIMIT_MINOR),
                    ),
                    metadata=metadata,
                )

        await asyncio.gather(*(open_one(a) for a in [*pool_account_ids(), HOT_ACCOUNT_ID]))


async def _transfer_count(database_url: str) -> int:
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
    try:
        return int(
            await database.fetchval(
                "SELECT count(*) FROM transfers WHERE organization_id = $1", uuid.UUID(ORGANIZATION_ID)
            )
        )
    finally:
        await database.close()


async def _check_books(address: str, token: str) -> None:
    from wallet.ledger.v1 import ledger_integrity_pb2, ledger_service_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        report = await stub.CheckInvariants(
            ledger_integrity_pb2.CheckInvariantsRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=120,
        )
    if not report.intact:
        raise BenchError(f"CheckInvariants after the load found {len(report.violations)} violations")
    print(f"  books intact: {[(t.currency, t.posted_debits_minor, t.posted_credits_minor) for t in report.totals]}")


def _statement_ratio(h2load: Path, address: str, headers: tuple[str, ...], database_url: str) -> Figure:
    from google.protobuf import timestamp_pb2

    from wallet.ledger.v1 import ledger_statements_pb2 as statements_pb

    small, large = str(uuid.uuid5(NAMESPACE, "statement-10k")), str(uuid.uuid5(NAMESPACE, "statement-1m"))
    middles = asyncio.run(
        _synthesize_history(database_url, {small: STATEMENT_SMALL_POSTINGS, large: STATEMENT_LARGE_POSTINGS})
    )
    latencies: dict[str, H2loadResult] = {}
    for account_id in (small, large):
        start = timestamp_pb2.Timestamp()
        start.FromDatetime(middles[account_id])
        body = statements_pb.GetStatementRequest(
            account_id=account_id, start_time=start, page_size=STATEMENT_PAGE_SIZE
        ).SerializeToString()
        latencies[account_id] = run_grpc_unary(
            h2load,
            address=address,
            method=f"{SERVICE}/GetStatement",
            request=body,
            connections=1,
            streams_per_connection=1,
            duration_s=STATEMENT_DURATION_S,
            warm_up_s=1,
            headers=headers,
        )
    small_p50, large_p50 = latencies[small].p50_ms, latencies[large].p50_ms
    if not small_p50 or not large_p50:
        raise BenchError("GetStatement produced no latency samples")
    print(f"  GetStatement p50: {small_p50:.2f} ms at 10k postings, {large_p50:.2f} ms at 1M")
    return Figure(
        "ledger.statement_1m_vs_10k",
        round(large_p50 / small_p50, 3),
        "ratio",
        "≤ 1.5",
        large_p50,
        latencies[large].p99_ms,
    )


async def _synthesize_history(database_url: str, sizes: dict[str, int]) -> dict[str, Any]:
    """Accounts with N postings each, written with SQL (fast), consistent with what the service would write."""
    database = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S, command_timeout=600)
    middles: dict[str, Any] = {}
    org = uuid.UUID(ORGANIZATION_ID)
    try:
        for account_id, count in sizes.items():
            account = uuid.UUID(account_id)
            counterparty = uuid.uuid5(NAMESPACE, f"{account_id}-counterparty")
            await database.execute(
                """INSERT INTO accounts (organization_id, account_id, kind, currency, balance_rule, status, outflow_day,
                       posted_credits_minor, posting_count, created_at, updated_at)
                   VALUES ($1, $2, 6, 'EUR', 3, 1, current_date, $3, $3, now(), now())""",
                org,
                account,
                count,
            )
            await database.execute(
                """INSERT INTO transfers (organization_id, transfer_id, debit_account_id, credit_account_id, currency,
                       amount_minor, kind, status, reference, pending, hold_timeout_ms, posted_amount_minor,
                       created_by_principal_id, created_at, posted_at)
                   SELECT $1, gen_random_uuid(), $3, $2, 'EUR', 1, 1, 2, '', false, 0, 1, 'bench',
                          timestamptz '2025-01-01' + make_interval(secs => g),
                          timestamptz '2025-01-01' + make_interval(secs => g)
                   FROM generate_series(1, $4) g""",
                org,
                account,
                counterparty,
                count,
            )
            await database.execute(
                """INSERT INTO postings (organization_id, account_id, posted_at, account_seq, transfer_id, side,
                       amount_minor, counterparty_account_id, posted_debits_after, posted_credits_after, sequence)
                   SELECT organization_id, credit_account_id, posted_at,
                          row_number() OVER (ORDER BY posted_at), transfer_id, 2, 1, debit_account_id, 0,
                          row_number() OVER (ORDER BY posted_at), 0
                   FROM transfers WHERE organization_id = $1 AND credit_account_id = $2""",
                org,
                account,
            )
            middles[account_id] = await database.fetchval(
                "SELECT timestamptz '2025-01-01' + make_interval(secs => $1::int)", count // 2
            )
        await database.execute("ANALYZE transfers")
        await database.execute("ANALYZE postings")
    finally:
        await database.close()
    return middles


if __name__ == "__main__":
    # ``python -m bench.sections.ledger serve``: the package import registered this module already.
    if sys.argv[1:] == ["serve"]:
        sys.exit(serve())
    sys.exit(f"usage: {sys.argv[0]} serve")

SECTION = register(
    Section(
        name="ledger",
        summary="ledger transfers/s (single, batch of 100, hot account) and statement latency vs history size",
        run=run,
        requires=("baseline",),
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
