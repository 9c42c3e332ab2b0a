"""``auth.verify_p99_us``: the kit's TokenVerifier checking an access token minted by a real auth server, p99 in µs
over 20,000 verifications with a warm JWKS cache (fed from auth's GetJwks, exactly as every service does);
``auth.login_p50_ms``: password login over gRPC at the configured argon2 parameters (reported, no target: argon2
is slow on purpose).

Auth runs in this process on port 0 against a fresh ``bench_auth`` database on the bench's Postgres and Redis.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid

import grpc

from bench.context import BenchContext
from bench.databases import fresh_service_database
from bench.errors import BenchError
from bench.figures import Figure
from bench.latency import percentile
from bench.registry import Section, register
from devstack.databases import with_database
from services.auth.app import AuthApplication
from services.auth.config import load_auth_settings
from services.kit.config import load_service_config
from services.kit.grpc_server import Runtime, WalletServer
from services.kit.jwks import AuthServiceJwksSource
from services.kit.tokens import TokenVerifier
from wallet.auth.v1 import auth_organizations_pb2, auth_service_pb2_grpc, auth_sessions_pb2

DATABASE = "bench_auth"
VERIFICATIONS = 20_000
WARMUP_VERIFICATIONS = 1_000
LOGINS = 40
PASSWORD = "bench passphrase that is long enough 1"  # noqa: S105 -- a bench-only account
NANOSECONDS_PER_MICROSECOND = 1_000
NANOSECONDS_PER_MILLISECOND = 1_000_000


def run(context: BenchContext) -> list[Figure]:
    database_url = with_database(context.postgres_server_url, DATABASE)
    return asyncio.run(_measure(context.postgres_server_url, database_url, context.redis_url()))


async def _measure(server_url: str, database_url: str, redis_url: str) -> list[Figure]:
    await fresh_service_database(server_url, database_url, DATABASE, "auth")
    config = load_service_config(
        "auth", {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "GRPC_PORT": "0", "METRICS_PORT": "0"}
    )
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    runtime = Runtime(config=config, verifier=None)
    app = AuthApplication(runtime, load_auth_settings({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": key}))
    runtime.verifier = app.verifier
    server = WalletServer(runtime, app.registrations())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            slug = f"bench-{uuid.uuid4().hex[:8]}"
            signed_up = await stub.SignUpOrganization(
                auth_organizations_pb2.SignUpOrganizationRequest(
                    organization_id=str(uuid.uuid4()),
                    slug=slug,
                    display_name="Bench",
                    owner_email=f"owner@{slug}.example.com",
                    owner_display_name="Bench Owner",
                    owner_password=PASSWORD,
                )
            )
            verify = await _verify_figure(f"127.0.0.1:{server.port}", signed_up.tokens.access_token)
            login = await _login_figure(stub, slug, f"owner@{slug}.example.com")
    finally:
        await server.stop()
    return [verify, login]


async def _verify_figure(address: str, token: str) -> Figure:
    source = AuthServiceJwksSource(address)
    verifier = TokenVerifier(source, audience="wallet", issuer="wallet-auth")
    try:
        for _ in range(WARMUP_VERIFICATIONS):
            await verifier.verify(token)
        samples_us: list[float] = []
        for _ in range(VERIFICATIONS):
            started = time.perf_counter_ns()
            await verifier.verify(token)
            samples_us.append((time.perf_counter_ns() - started) / NANOSECONDS_PER_MICROSECOND)
    finally:
        await source.close()
    samples_us.sort()
    p99_us = percentile(samples_us, 0.99)
    print(f"  token verification: p50 {percentile(samples_us, 0.50):.1f} µs, p99 {p99_us:.1f} µs")
    return Figure(
        name="auth.verify_p99_us",
        value=round(p99_us, 1),
        unit="µs",
        target="≤ 100",
        p50_ms=percentile(samples_us, 0.50) / 1000,
        p99_ms=p99_us / 1000,
    )


async def _login_figure(stub: auth_service_pb2_grpc.AuthServiceAsyncStub, slug: str, email: str) -> Figure:
    samples_ms: list[float] = []
    for _ in range(LOGINS):
        started = time.perf_counter_ns()
        reply = await stub.Login(
            auth_sessions_pb2.LoginRequest(organization_slug=slug, login=email, password=PASSWORD)
        )
        samples_ms.append((time.perf_counter_ns() - started) / NANOSECONDS_PER_MILLISECOND)
        if not reply.tokens.access_token:
            raise BenchError("a bench login did not sign in")
    samples_ms.sort()
    p50_ms = percentile(samples_ms, 0.50)
    print(f"  login: p50 {p50_ms:.1f} ms over {LOGINS} logins")
    return Figure(
        name="auth.login_p50_ms",
        value=round(p50_ms, 2),
        unit="ms",
        target="reported (argon2id m=19 MiB, t=2, p=1)",
        p50_ms=p50_ms,
        p99_ms=percentile(samples_ms, 0.99),
    )


SECTION = register(
    Section(
        name="auth",
        summary="kit token verification p99 (µs) of an auth-minted token; login p50 (ms) at the argon2 parameters",
        run=run,
    )
)

__all__ = ["SECTION"]
