"""The gateway's figures (DESIGN.md §8), against the **real ledger**.

``gateway.http_vs_grpc``: CreateTransfer/s as HTTP/JSON through the gateway ÷ the same call as direct gRPC to the
ledger, 64 in flight, in the same run. ``gateway.added_p50_ms``: p50 through the gateway minus p50 direct, at one call
in flight.

The ledger is the real service as the ledger section runs it (``python -m bench.sections.ledger serve``: production
code on a fresh database, whose bench servicer gives each call a fresh transfer id and random accounts of a pool of
1,000, so one fixed request body makes distinct transfers). Only auth is a stand-in (``python -m
bench.sections.gateway jwks``: a kit server whose ``GetJwks`` serves the bench's key), so the gateway verifies tokens
exactly as in production. The gateway runs as ``python -m gateway`` with Redis rate limits on (set high enough never
to refuse), so every per-call cost of the edge is in the figure. h2load drives both sides: gRPC over HTTP/2, JSON over
HTTP/1.1 (``--h1``), one connection per call in flight. Direct and gateway runs alternate (direct, gateway, direct,
gateway) and the ratio divides the summed throughputs, so a burst of load from elsewhere on the shared machine skews
both sides alike. Afterwards the ledger's metrics must show at least as many OK CreateTransfers as h2load counted, and
every HTTP answer must have been a 2xx.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.cpu import processes_cpu_s
from bench.databases import fresh_service_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import EXIT_GRACE_S, H2loadResult, parse_summary, read_latency_log_us, run_grpc_unary
from bench.latency import p50_p99_ms
from bench.registry import Section, register
from bench.sections import ledger as ledger_bench
from devstack.databases import with_database
from gateway.http_api import CLIENT_CLOSED_REQUEST

IN_FLIGHT = 64
GRPC_CONNECTIONS = 4
GRPC_STREAMS_PER_CONNECTION = IN_FLIGHT // GRPC_CONNECTIONS
DURATION_S = 8
LATENCY_DURATION_S = 4
WARM_UP_S = 2
START_TIMEOUT_S = 60.0
TOKEN_LIFETIME_S = 3_600
# High enough that the limits are checked on every call (the Redis round trip is part of the cost) but never refuse.
RATE_LIMIT_UNLIMITED = "1000000"
METHOD = "/wallet.ledger.v1.LedgerService/CreateTransfer"
HTTP_PATH = "/v1/transfers"
AMOUNT_MINOR = 1
DATABASE = "bench_gateway_ledger"


# --- the auth stand-in --------------------------------------------------------------------------------------------


def jwks() -> int:
    """Serves ``AuthService.GetJwks`` with the bench's key (``BENCH_GATEWAY_JWK``) until SIGTERM."""
    from services.kit.config import load_service_config
    from services.kit.grpc_server import Registration, Runtime, WalletServer
    from services.kit.logs import setup_logging
    from services.kit.tokens import StaticJwksSource, TokenVerifier

    # auth_service_pb2 holds the service descriptor whose method policies the kit's interceptor reads.
    from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2, auth_service_pb2_grpc

    jwk: dict[str, Any] = json.loads(os.environ["BENCH_GATEWAY_JWK"])
    assert auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"]

    class Jwks(auth_service_pb2_grpc.AuthServiceServicer):
        async def GetJwks(self, request: auth_keys_pb2.GetJwksRequest, context: Any) -> auth_keys_pb2.GetJwksResponse:
            return auth_keys_pb2.GetJwksResponse(keys=[auth_keys_pb2.Jwk(**jwk)])

    async def main() -> None:
        setup_logging("bench-jwks", "WARNING")
        config = load_service_config("auth")
        verifier = TokenVerifier(StaticJwksSource([jwk]), audience=config.jwt_audience, issuer=config.jwt_issuer)
        registrations = [
            Registration(
                "wallet.auth.v1.AuthService",
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
                Jwks(),  # type: ignore[abstract]  # the generated base is abstract; unbuilt RPCs stay inherited
            ),
        ]
        server = WalletServer(
            Runtime(config=config, verifier=verifier), registrations, use_database=False, use_redis=False
        )
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())
    return 0


# --- the section --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the {what} exited with {process.returncode}; see its log in the bench work dir")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as reply:  # noqa: S310 (a local URL we built)
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"the {what} did not answer {url} within {START_TIMEOUT_S:.0f} s")


def _gateway_statuses(metrics_port: int) -> dict[str, int]:
    """HTTP statuses the gateway answered on the transfer route so far (its RED metrics), for error messages."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5.0) as reply:
        text = reply.read().decode()
    pattern = re.compile(
        r'^wallet_gateway_http_requests_total\{[^}]*route="/v1/transfers"[^}]*status="(\d+)"[^}]*\} ([\d.e+]+)$',
        re.MULTILINE,
    )
    return {status: int(float(count)) for status, count in pattern.findall(text)}


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _run_http(
    h2load: Path, url: str, body: bytes, headers: Sequence[str], *, clients: int, duration_s: float
) -> H2loadResult:
    """h2load over HTTP/1.1: ``clients`` connections, one request in flight on each."""
    with tempfile.TemporaryDirectory(prefix="h2load-h1-") as scratch:
        body_path = Path(scratch) / "body.json"
        body_path.write_bytes(body)
        log_path = Path(scratch) / "requests.log"
        argv = [
            str(h2load),
            "--h1",
            url,
            f"--data={body_path}",
            *(f"--header={header}" for header in headers),
            f"--clients={clients}",
            "--threads=1",
            f"--duration={duration_s:g}",
            f"--warm-up-time={WARM_UP_S:g}",
            f"--log-file={log_path}",
        ]
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=WARM_UP_S + duration_s + EXIT_GRACE_S, check=False
        )
        if completed.returncode != 0:
            raise BenchError(f"h2load --h1 failed with exit code {completed.returncode}: {completed.stderr[-400:]}")
        p50_ms, p99_ms = p50_p99_ms(read_latency_log_us(log_path))
    return parse_summary(completed.stdout, p50_ms=p50_ms, p99_ms=p99_ms)


ROUNDS = 2


def _grpc_request() -> bytes:
    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_transfers_pb2

    return ledger_transfers_pb2.CreateTransferRequest(
        transfer_id=ledger_bench.SENTINEL,
        debit_account_id=ledger_bench.SENTINEL,
        credit_account_id=ledger_bench.SENTINEL,
        amount=money_pb2.Money(currency="EUR", amount_minor=AMOUNT_MINOR),
        reference="bench",
    ).SerializeToString()


def _http_body() -> bytes:
    # The same sentinel ids as the gRPC body: the bench ledger replaces them (see the module docstring).
    return json.dumps(
        {
            "transferId": ledger_bench.SENTINEL,
            "debitAccountId": ledger_bench.SENTINEL,
            "creditAccountId": ledger_bench.SENTINEL,
            "amount": {"currency": "EUR", "amountMinor": str(AMOUNT_MINOR)},
            "reference": "bench",
        }
    ).encode()


def run(context: BenchContext) -> list[Figure]:
    from services.kit.testing import SigningKey

    h2load = context.h2load_binary()
    key = SigningKey()
    token = key.mint(org=ledger_bench.ORGANIZATION_ID, roles=["owner"], exp=int(time.time()) + TOKEN_LIFETIME_S)
    database_url = with_database(context.postgres_server_url, DATABASE)
    asyncio.run(fresh_service_database(context.postgres_server_url, database_url, DATABASE, "ledger"))
    ledger_port, ledger_metrics = _free_port(), _free_port()
    jwks_port, jwks_metrics = _free_port(), _free_port()
    http_port, grpc_port, gateway_metrics = _free_port(), _free_port(), _free_port()
    ledger_address, jwks_address = f"127.0.0.1:{ledger_port}", f"127.0.0.1:{jwks_port}"
    base_env = {**os.environ, "LOG_LEVEL": "WARNING"}
    ledger_env = {
        **base_env,
        "DATABASE_URL": database_url,
        "REDIS_URL": context.redis_url(),
        "GRPC_PORT": str(ledger_port),
        "METRICS_PORT": str(ledger_metrics),
        "BENCH_LEDGER_JWK": json.dumps(key.public_jwk),
    }
    jwks_env = {
        **base_env,
        "GRPC_PORT": str(jwks_port),
        "METRICS_PORT": str(jwks_metrics),
        # Required by the kit's configuration; the stand-in never connects to either.
        "DATABASE_URL": context.postgres_server_url,
        "REDIS_URL": context.redis_url(),
        "BENCH_GATEWAY_JWK": json.dumps(key.public_jwk),
    }
    gateway_env = {
        **base_env,
        # Contacts and risk are not called; their address only has to answer health checks for /readyz.
        **{f"{name}_ADDR": jwks_address for name in ("AUTH", "CONTACTS", "RISK")},
        "LEDGER_ADDR": ledger_address,
        "GATEWAY_HTTP_PORT": str(http_port),
        "GATEWAY_GRPC_PORT": str(grpc_port),
        "METRICS_PORT": str(gateway_metrics),
        "REDIS_URL": context.redis_url(),
        "GATEWAY_RATE_LIMIT_KEY": os.urandom(16).hex(),
        "GATEWAY_RATE_PER_SUBJECT_PER_S": RATE_LIMIT_UNLIMITED,
        "GATEWAY_BURST_PER_SUBJECT": RATE_LIMIT_UNLIMITED,
        "GATEWAY_RATE_PER_IP_PER_S": RATE_LIMIT_UNLIMITED,
        "GATEWAY_BURST_PER_IP": RATE_LIMIT_UNLIMITED,
    }
    context.work_dir.mkdir(parents=True, exist_ok=True)
    request = _grpc_request()
    auth_header = f"authorization: Bearer {token}"
    http_url = f"http://127.0.0.1:{http_port}{HTTP_PATH}"
    body = _http_body()
    http_headers = (auth_header, "content-type: application/json")
    processes: list[subprocess.Popen[bytes]] = []
    with (
        (context.work_dir / "gateway-ledger.log").open("w") as ledger_log,
        (context.work_dir / "gateway-jwks.log").open("w") as jwks_log,
        (context.work_dir / "gateway.log").open("w") as gateway_log,
    ):
        try:
            ledger = subprocess.Popen(
                [sys.executable, "-m", "bench.sections.ledger", "serve"],
                env=ledger_env,
                stdout=ledger_log,
                stderr=ledger_log,
            )
            processes.append(ledger)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.sections.gateway", "jwks"],
                    env=jwks_env,
                    stdout=jwks_log,
                    stderr=jwks_log,
                )
            )
            ledger_bench._wait_serving(ledger_address, ledger)
            asyncio.run(ledger_bench._open_accounts(ledger_address, token))
            _wait_http(f"http://127.0.0.1:{jwks_metrics}/metrics", processes[1], "JWKS stand-in")
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=gateway_env, stdout=gateway_log, stderr=gateway_log
            )
            processes.append(gateway)
            _wait_http(f"http://127.0.0.1:{http_port}/readyz", gateway, "gateway")

            def direct(connections: int, streams: int, duration_s: float) -> H2loadResult:
                return run_grpc_unary(
                    h2load,
                    address=ledger_address,
                    method=METHOD,
                    request=request,
                    connections=connections,
                    streams_per_connection=streams,
                    duration_s=duration_s,
                    warm_up_s=WARM_UP_S,
                    headers=(auth_header,),
                )

            def via_gateway(clients: int, duration_s: float) -> H2loadResult:
                return _run_http(h2load, http_url, body, http_headers, clients=clients, duration_s=duration_s)

            ok_before = ledger_bench._ok_calls(ledger_metrics, "CreateTransfer")
            direct_loads: list[H2loadResult] = []
            http_loads: list[H2loadResult] = []
            # CPU seconds per call of each process, over the HTTP rounds: unlike throughput, hardly moved by other
            # load on the machine, so the report says where the time goes even when the ratio is noisy.
            cpu_ledger_s = cpu_gateway_s = 0.0
            http_calls = 0  # warm-up included, as the CPU times are
            for _ in range(ROUNDS):
                direct_loads.append(direct(GRPC_CONNECTIONS, GRPC_STREAMS_PER_CONNECTION, DURATION_S))
                ledger_cpu, gateway_cpu = processes_cpu_s([ledger.pid]), processes_cpu_s([gateway.pid])
                calls_before = ledger_bench._ok_calls(ledger_metrics, "CreateTransfer")
                http_loads.append(via_gateway(IN_FLIGHT, DURATION_S))
                cpu_ledger_s += processes_cpu_s([ledger.pid]) - ledger_cpu
                cpu_gateway_s += processes_cpu_s([gateway.pid]) - gateway_cpu
                http_calls += ledger_bench._ok_calls(ledger_metrics, "CreateTransfer") - calls_before
            direct_one = direct(1, 1, LATENCY_DURATION_S)
            http_one = via_gateway(1, LATENCY_DURATION_S)
            ledger_bench._wait_drained(ledger_metrics)
            ok_calls = ledger_bench._ok_calls(ledger_metrics, "CreateTransfer") - ok_before
            statuses = _gateway_statuses(gateway_metrics)
        finally:
            for process in reversed(processes):
                _stop(process)
    # The gateway answers 499 (and logs nothing) to a client that went away before its body was read: h2load does
    # that to the calls in flight when its time is up. Any other status than 200 and 499 fails the run.
    went_away = statuses.pop(str(CLIENT_CLOSED_REQUEST), 0)
    non_2xx = sum(result.succeeded - result.status_2xx for result in (*http_loads, http_one))
    failed = sum(result.failed + result.errored for result in (*http_loads, http_one))
    if failed or set(statuses) - {"200"} or non_2xx > went_away:
        raise BenchError(
            f"HTTP through the gateway: {failed} failed or errored, {non_2xx} answered non-2xx;"
            f" the gateway's statuses: {statuses} and {went_away} x 499 (see gateway.log in the bench work dir)"
        )
    counted = sum(r.succeeded for r in (*direct_loads, *http_loads, direct_one, http_one))
    if ok_calls < counted:
        raise BenchError(f"h2load counted {counted} calls but the ledger answered only {ok_calls} OK")
    if None in (direct_one.p50_ms, http_one.p50_ms):
        raise BenchError("no latency samples at one call in flight")
    direct_per_s = sum(load.requests_per_s for load in direct_loads)
    http_per_s = sum(load.requests_per_s for load in http_loads)
    added_p50_ms = float(http_one.p50_ms or 0.0) - float(direct_one.p50_ms or 0.0)
    rounds = ", ".join(
        f"{d.requests_per_s:,.0f} vs {h.requests_per_s:,.0f}" for d, h in zip(direct_loads, http_loads, strict=True)
    )
    print(
        f"  CPU per HTTP transfer: gateway {cpu_gateway_s / max(http_calls, 1) * 1e6:,.0f} us,"
        f" ledger {cpu_ledger_s / max(http_calls, 1) * 1e6:,.0f} us"
    )
    print(
        f"  direct gRPC vs HTTP via gateway, transfers/s per round: {rounds}; "
        f"p50 at 1 in flight {direct_one.p50_ms:.2f} ms direct, {http_one.p50_ms:.2f} ms via gateway (real ledger)"
    )
    last_http = http_loads[-1]
    return [
        Figure(
            name="gateway.http_vs_grpc",
            value=round(http_per_s / direct_per_s, 3),
            unit="ratio (real ledger)",
            target="≥ 0.60",
            p50_ms=last_http.p50_ms,
            p99_ms=last_http.p99_ms,
        ),
        Figure(
            name="gateway.added_p50_ms",
            value=round(added_p50_ms, 3),
            unit="ms (real ledger)",
            target="≤ 2",
            p50_ms=http_one.p50_ms,
            p99_ms=http_one.p99_ms,
        ),
    ]


if __name__ == "__main__":
    # ``python -m bench.sections.gateway jwks``: the package import registered this module already.
    if sys.argv[1:] == ["jwks"]:
        sys.exit(jwks())
    sys.exit(f"usage: {sys.argv[0]} jwks")

SECTION = register(
    Section(
        name="gateway",
        summary="CreateTransfer/s as HTTP/JSON via the gateway vs direct gRPC to the real ledger, and added p50",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
