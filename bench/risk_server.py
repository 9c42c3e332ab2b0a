"""A risk server for the bench, in its own process: ``python -m bench.risk_server --database-url ... --redis-url
... --jwks-file ... --port-file ...``.

It is the real service (same RiskApp, servicer, interceptors, caching token verifier, recorder and event consumer)
with three differences from ``python -m services.risk``: tokens are verified against the JWKS file the bench wrote
(there is no auth service in the bench), it listens on a free port that it writes to ``--port-file``, and — because
h2load repeats one request body — an Assess whose ``assessment_id`` is the all-zero SENTINEL gets a fresh UUIDv7
(and a debit account of the ``--fresh-accounts`` pool, with its usual payee, when the debit account is the
SENTINEL too) before the service sees it, so every such call is a new evaluation, not an idempotent replay (as the
ledger bench does for transfer ids). Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from services.kit.config import load_service_config
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.ids import uuid7
from services.kit.migrations import apply_migrations
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER
from services.kit.token_cache import CachedTokenVerifier
from services.kit.tokens import StaticJwksSource
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.ledger_client import GrpcLedgerReviews
from services.risk.server import SERVICE_NAME, RiskServer
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "risk" / "migrations"
SENTINEL = "00000000-0000-0000-0000-000000000000"
_POOL_NAMESPACE = uuid.UUID("0d7f3b8e-5c1a-4f55-8d0e-3a2b9c6e1f40")


def fresh_pairs(count: int) -> list[tuple[str, str]]:
    """The bench's accounts and their usual payees (account i pays account i+1), the same in the bench and here."""
    accounts = [str(uuid.uuid5(_POOL_NAMESPACE, f"account-{index}")) for index in range(count)]
    return [(accounts[index], accounts[(index + 1) % count]) for index in range(count)]


def _fresh_servicer(app: RiskApp, pairs: list[tuple[str, str]]) -> RiskServer:
    class FreshAssessServer(RiskServer):
        async def Assess(
            self, request: risk_assessments_pb2.AssessRequest, context: Any
        ) -> risk_assessments_pb2.AssessResponse:
            if request.assessment_id == SENTINEL:
                request.assessment_id = str(uuid7())
                request.context.transfer_id = request.assessment_id
                if request.context.debit_account_id == SENTINEL and pairs:
                    debit, credit = random.choice(pairs)
                    request.context.debit_account_id, request.context.credit_account_id = debit, credit
            return await super().Assess(request, context)

    return FreshAssessServer(app)


class _NoLedgerTokens:
    """The bench resolves no cases; a ledger call would fail loudly rather than pretend."""

    async def token_for(self, organization_id: str) -> str:
        raise RuntimeError("the bench's risk server has no ledger")


async def _serve(
    database_url: str,
    redis_url: str,
    keys: list[dict[str, str]],
    port_file: Path,
    events_stream: str,
    fresh_accounts: int,
    port: int,
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection, MIGRATIONS, scope="risk")
    finally:
        await connection.close()
    # With a fixed --port, several of these processes share it (SO_REUSEPORT): the kernel spreads connections.
    config = load_service_config(
        "risk",
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GRPC_PORT": str(port),
            "METRICS_PORT": "0",
            "GRPC_SO_REUSEPORT": "true" if port else "false",
        },
    )
    verifier = CachedTokenVerifier(
        StaticJwksSource(keys), audience=TEST_AUDIENCE, issuer=TEST_ISSUER, refresh_min_interval_s=0.0
    )
    runtime = Runtime(config=config, verifier=verifier)
    risk_config = RiskConfig(ledger_events_stream=events_stream)
    app = RiskApp(runtime, risk_config, GrpcLedgerReviews("127.0.0.1:1", _NoLedgerTokens()))
    servicer = _fresh_servicer(app, fresh_pairs(fresh_accounts) if fresh_accounts else [])
    registrations: Sequence[Registration] = [
        Registration(SERVICE_NAME, risk_service_pb2_grpc.add_RiskServiceServicer_to_server, servicer)
    ]
    server = WalletServer(runtime, registrations)
    await server.start()
    for job in app.background_jobs():
        runtime.background_tasks.append(asyncio.create_task(job))
    await asyncio.to_thread(port_file.write_text, f"{server.port} {server.metrics_port}", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.risk_server")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--jwks-file", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    # Its own stream, so seeded events never reach a real suite's consumers on the same Redis.
    parser.add_argument("--events-stream", required=True)
    parser.add_argument("--fresh-accounts", type=int, default=0, help="size of the SENTINEL debit account pool")
    parser.add_argument("--port", type=int, default=0, help="a fixed port shared with other processes (reuseport)")
    args = parser.parse_args()
    keys = json.loads(args.jwks_file.read_text(encoding="utf-8"))
    uvloop.run(
        _serve(
            args.database_url,
            args.redis_url,
            keys,
            args.port_file,
            args.events_stream,
            args.fresh_accounts,
            args.port,
        )
    )


if __name__ == "__main__":
    main()
