"""The gateway's figures (DESIGN.md §8), measured for now against a **stand-in ledger**, not the real one.

``gateway.http_vs_grpc``: CreateTransfer/s as HTTP/JSON through the gateway ÷ the same call as direct gRPC to the
service, 64 in flight, in the same run. ``gateway.added_p50_ms``: p50 through the gateway minus p50 direct, at one
call in flight.

The stand-in (``python -m bench.sections.gateway standin``) is a real kit server (auth, interceptors, metrics) whose
``CreateTransfer`` echoes the request without touching a database, and whose ``GetJwks`` serves the bench's key so
the gateway verifies tokens exactly as in production. The gateway runs as ``python -m gateway`` with Redis rate
limits on (set high enough never to refuse), so every per-call cost of the edge is in the figure. Because the
stand-in does no work, the ratio is the gateway's own overhead; against the real ledger (whose transfers cost far
more) it will be higher. h2load drives both sides: gRPC over HTTP/2, JSON over HTTP/1.1 (``--h1``, uvicorn speaks
HTTP/1.1), one connection per call in flight. Afterwards the stand-in's metrics must show as many OK calls as h2load
counted, and every HTTP answer must have been a 2xx.
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
from bench.errors import BenchError
from bench.figures import Figure
from bench.h2load import EXIT_GRACE_S, H2loadResult, parse_summary, read_latency_log_us, run_grpc_unary
from bench.latency import p50_p99_ms
from bench.registry import Section, register

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
TRANSFER_ID = "0190a0c8-0000-7000-8000-000000000001"
DEBIT_ACCOUNT_ID = "0190a0c8-0000-7000-8000-00000000000a"
CREDIT_ACCOUNT_ID = "0190a0c8-0000-7000-8000-00000000000b"
AMOUNT_MINOR = 1250
TRANSFER_JSON = {
    "transferId": TRANSFER_ID,
    "debitAccountId": DEBIT_ACCOUNT_ID,
    "creditAccountId": CREDIT_ACCOUNT_ID,
    "amount": {"currency": "EUR", "amountMinor": str(AMOUNT_MINOR)},
    "reference": "bench",
}


# --- the stand-in ledger ------------------------------------------------------------------------------------------


def standin() -> int:
    """Serves the stand-in on ``GRPC_PORT``/``METRICS_PORT`` until SIGTERM."""
    from services.kit.config import load_service_config
    from services.kit.grpc_server import Registration, Runtime, WalletServer
    from services.kit.logs import setup_logging
    from services.kit.tokens import StaticJwksSource, TokenVerifier
    from wallet.auth.v1 import auth_keys_pb2, auth_service_pb2_grpc
    from wallet.ledger.v1 import ledger_service_pb2_grpc, ledger_transfers_pb2

    jwk: dict[str, Any] = json.loads(os.environ["BENCH_GATEWAY_JWK"])

    class EchoLedger(ledger_service_pb2_grpc.LedgerServiceServicer):
        async def CreateTransfer(
            self, request: ledger_transfers_pb2.CreateTransferRequest, context: Any
        ) -> ledger_transfers_pb2.CreateTransferResponse:
            transfer = ledger_transfers_pb2.Transfer(
                transfer_id=request.transfer_id,
                debit_account_id=request.debit_account_id,
                credit_account_id=request.credit_account_id,
                amount=request.amount,
                reference=request.reference,
                status=ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
            )
            return ledger_transfers_pb2.CreateTransferResponse(transfer=transfer)

    class Jwks(auth_service_pb2_grpc.AuthServiceServicer):
        async def GetJwks(self, request: auth_keys_pb2.GetJwksRequest, context: Any) -> auth_keys_pb2.GetJwksResponse:
            return auth_keys_pb2.GetJwksResponse(keys=[auth_keys_pb2.Jwk(**jwk)])

    async def main() -> None:
        setup_logging("bench-standin", "WARNING")
        config = load_service_config("ledger")
        verifier = TokenVerifier(StaticJwksSource([jwk]), audience=config.jwt_audience, issuer=config.jwt_issuer)
        registrations = [
            Registration(
                "wallet.ledger.v1.LedgerService",
                ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server,
                EchoLedger(),  # type: ignore[abstract]  # the generated base is abstract; unbuilt RPCs stay inherited
            ),
            Registration(
                "wallet.auth.v1.AuthService",
                auth_service_pb2_grpc.add_AuthServiceServicer_to_server,
                Jwks(),  # type: ignore[abstract]
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


def _ok_calls(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5.0) as reply:
        text = reply.read().decode()
    pattern = re.compile(
        r'^wallet_grpc_server_handled_total\{[^}]*grpc_code="OK"[^}]*grpc_method="CreateTransfer"[^}]*\} ([\d.e+]+)$',
        re.MULTILINE,
    )
    return sum(int(float(value)) for value in pattern.findall(text))


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


def run(context: BenchContext) -> list[Figure]:
    from services.kit.testing import SigningKey
    from wallet.common.v1 import money_pb2
    from wallet.ledger.v1 import ledger_transfers_pb2

    h2load = context.h2load_binary()
    key = SigningKey()
    token = key.mint(roles=["owner"], exp=int(time.time()) + TOKEN_LIFETIME_S)
    standin_port, standin_metrics = _free_port(), _free_port()
    http_port, grpc_port, gateway_metrics = _free_port(), _free_port(), _free_port()
    standin_address = f"127.0.0.1:{standin_port}"
    base_env = {**os.environ, "LOG_LEVEL": "WARNING"}
    standin_env = {
        **base_env,
        "GRPC_PORT": str(standin_port),
        "METRICS_PORT": str(standin_metrics),
        # Required by the kit's configuration; the stand-in never connects to either.
        "DATABASE_URL": context.postgres_server_url,
        "REDIS_URL": context.redis_url(),
        "BENCH_GATEWAY_JWK": json.dumps(key.public_jwk),
    }
    gateway_env = {
        **base_env,
        **{f"{name}_ADDR": standin_address for name in ("AUTH", "LEDGER", "CONTACTS", "RISK")},
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
    request = ledger_transfers_pb2.CreateTransferRequest(
        transfer_id=TRANSFER_ID,
        debit_account_id=DEBIT_ACCOUNT_ID,
        credit_account_id=CREDIT_ACCOUNT_ID,
        amount=money_pb2.Money(currency="EUR", amount_minor=AMOUNT_MINOR),
        reference="bench",
    ).SerializeToString()
    auth_header = f"authorization: Bearer {token}"
    http_url = f"http://127.0.0.1:{http_port}{HTTP_PATH}"
    body = json.dumps(TRANSFER_JSON).encode()
    http_headers = (auth_header, "content-type: application/json")
    with (
        (context.work_dir / "gateway-standin.log").open("w") as standin_log,
        (context.work_dir / "gateway.log").open("w") as gateway_log,
    ):
        standin_process = subprocess.Popen(
            [sys.executable, "-m", "bench.sections.gateway", "standin"],
            env=standin_env,
            stdout=standin_log,
            stderr=standin_log,
        )
        gateway_process: subprocess.Popen[bytes] | None = None
        try:
            _wait_http(f"http://127.0.0.1:{standin_metrics}/metrics", standin_process, "stand-in ledger")
            gateway_process = subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=gateway_env, stdout=gateway_log, stderr=gateway_log
            )
            _wait_http(f"http://127.0.0.1:{http_port}/readyz", gateway_process, "gateway")

            def direct(connections: int, streams: int, duration_s: float) -> H2loadResult:
                return run_grpc_unary(
                    h2load,
                    address=standin_address,
                    method=METHOD,
                    request=request,
                    connections=connections,
                    streams_per_connection=streams,
                    duration_s=duration_s,
                    warm_up_s=WARM_UP_S,
                    headers=(auth_header,),
                )

            ok_before = _ok_calls(standin_metrics)
            direct_load = direct(GRPC_CONNECTIONS, GRPC_STREAMS_PER_CONNECTION, DURATION_S)
            http_load = _run_http(h2load, http_url, body, http_headers, clients=IN_FLIGHT, duration_s=DURATION_S)
            direct_one = direct(1, 1, LATENCY_DURATION_S)
            http_one = _run_http(h2load, http_url, body, http_headers, clients=1, duration_s=LATENCY_DURATION_S)
            ok_calls = _ok_calls(standin_metrics) - ok_before
        finally:
            if gateway_process is not None:
                _stop(gateway_process)
            _stop(standin_process)
    for name, result in (("HTTP", http_load), ("HTTP (1 in flight)", http_one)):
        if result.failed or result.errored or result.status_2xx < result.succeeded:
            raise BenchError(
                f"{name} through the gateway: {result.failed} failed, {result.errored} errored,"
                f" {result.succeeded - result.status_2xx} answered non-2xx of {result.succeeded}"
            )
    counted = sum(r.succeeded for r in (direct_load, http_load, direct_one, http_one))
    if ok_calls < counted:
        raise BenchError(f"h2load counted {counted} calls but the stand-in answered only {ok_calls} OK")
    if None in (direct_one.p50_ms, http_one.p50_ms):
        raise BenchError("no latency samples at one call in flight")
    added_p50_ms = float(http_one.p50_ms or 0.0) - float(direct_one.p50_ms or 0.0)
    print(
        f"  direct gRPC {direct_load.requests_per_s:,.0f}/s, HTTP via gateway {http_load.requests_per_s:,.0f}/s; "
        f"p50 at 1 in flight {direct_one.p50_ms:.2f} ms direct, {http_one.p50_ms:.2f} ms via gateway (stand-in ledger)"
    )
    return [
        Figure(
            name="gateway.http_vs_grpc",
            value=round(http_load.requests_per_s / direct_load.requests_per_s, 3),
            unit="ratio (stand-in ledger)",
            target="≥ 0.60",
            p50_ms=http_load.p50_ms,
            p99_ms=http_load.p99_ms,
        ),
        Figure(
            name="gateway.added_p50_ms",
            value=round(added_p50_ms, 3),
            unit="ms (stand-in ledger)",
            target="≤ 2",
            p50_ms=http_one.p50_ms,
            p99_ms=http_one.p99_ms,
        ),
    ]


if __name__ == "__main__":
    # ``python -m bench.sections.gateway standin``: the package import registered this module already.
    if sys.argv[1:] == ["standin"]:
        sys.exit(standin())
    sys.exit(f"usage: {sys.argv[0]} standin")

SECTION = register(
    Section(
        name="gateway",
        summary="CreateTransfer/s as HTTP/JSON via the gateway vs direct gRPC, and added p50 (stand-in ledger for now)",
        run=run,
        needs_h2load=True,
    )
)

__all__ = ["SECTION"]
