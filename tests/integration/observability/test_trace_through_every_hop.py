"""One payment, one trace: a transfer sent to the gateway over HTTP is followed through every hop — the gateway's
server span, the ledger's gRPC server span, the ledger → risk gRPC client and server spans (the risk gate), Postgres
and Redis spans — with OpenTelemetry semantic-convention attributes and no personal data; then the outbox relay and
risk's event consumer continue it through span links from the event on the Redis Stream.

The services run in this process (real auth, risk, ledger with its risk gate, and the gateway, each on port 0 with
its own database), so the session's in-memory exporter sees every span, as a collector would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bench.databases import fresh_service_database
from devstack.databases import with_database
from services.kit.grpc_server import Registration, Runtime, WalletServer
from services.kit.outbox import OutboxRelay
from services.kit.testing import config_for_tests, start_test_server
from services.ledger.app import LedgerApp
from services.ledger.events import LEDGER_EVENTS_STREAM
from services.ledger.risk_gate import ASSESS_SCOPE, RiskGateConfig, RiskGateSetup
from services.ledger.server import registrations_for as ledger_registrations
from services.risk.app import RiskApp
from services.risk.config import RiskConfig
from services.risk.ledger_client import LEDGER_REVIEW_SCOPE, GrpcLedgerReviews
from services.risk.server import registrations_for as risk_registrations
from tests.integration.auth.conftest import RunningAuth, auth_env, start_auth
from tests.integration.gateway.conftest import RunningGateway, gateway_environ, start_gateway
from tests.integration.gateway.flows import OWNER_PASSWORD, Owner, ok, open_account, sign_up_with_mfa, transfer
from tests.integration.services_stack import auth_backed_verifier, platform_tokens

pytestmark = pytest.mark.integration

# Generous: the point is the trace, not the gate's latency tier (a loaded CI machine must not fail open).
GATE_DEADLINE_S = 5.0
SPANS_WAIT_S = 5.0
CONSUME_ROUNDS_MAX = 50
# Nowhere listens here: risk's review client is never used by these tests.
UNUSED_LEDGER_ADDRESS = "127.0.0.1:1"


@dataclass
class TracedSuite:
    auth: RunningAuth
    risk: WalletServer
    risk_app: RiskApp
    ledger: WalletServer
    ledger_app: LedgerApp
    gateway: RunningGateway
    consumer_group: str


async def _database(postgres_server_url: str, service: str, names: list[str]) -> str:
    name = f"test_trace_{service}_{uuid.uuid4().hex[:10]}"
    url = with_database(postgres_server_url, name)
    await fresh_service_database(postgres_server_url, url, name, service)
    names.append(name)
    return url


@pytest.fixture(scope="module")
async def traced(
    postgres_server_url: str,
    redis_server_url: str,
) -> AsyncIterator[TracedSuite]:
    names: list[str] = []
    redis_client = redis_asyncio.Redis.from_url(redis_server_url)
    auth = await start_auth(await _database(postgres_server_url, "auth", names), redis_server_url, auth_env())
    verifier = auth_backed_verifier(auth.address)
    risk_apps: list[RiskApp] = []
    # Risk consumes the ledger's real stream, in a group of its own that starts at the stream's end.
    group = f"risk-trace-{uuid.uuid4().hex[:8]}"
    await redis_client.xgroup_create(LEDGER_EVENTS_STREAM, group, id="$", mkstream=True)
    risk_config = RiskConfig(ledger_events_stream=LEDGER_EVENTS_STREAM, consumer_group=group)
    reviews = GrpcLedgerReviews(UNUSED_LEDGER_ADDRESS, await platform_tokens(auth, "risk", LEDGER_REVIEW_SCOPE))

    def build_risk(runtime: Runtime) -> Sequence[Registration]:
        risk_apps.append(RiskApp(runtime, risk_config, reviews))
        return list(risk_registrations(risk_apps[0])(runtime))

    risk_url = await _database(postgres_server_url, "risk", names)
    risk = await start_test_server(config_for_tests("risk", risk_url, redis_server_url), build_risk, verifier)
    risk.runtime.background_tasks.append(asyncio.create_task(risk_apps[0].recorder.run()))
    gate = RiskGateSetup(
        RiskGateConfig(deadline_s=GATE_DEADLINE_S),
        f"127.0.0.1:{risk.port}",
        await platform_tokens(auth, "ledger", ASSESS_SCOPE),
    )
    ledger_apps: list[LedgerApp] = []

    def build_ledger(runtime: Runtime) -> Sequence[Registration]:
        ledger_apps.append(LedgerApp(runtime, risk_gate=gate))
        return ledger_registrations(ledger_apps[0])

    ledger_url = await _database(postgres_server_url, "ledger", names)
    ledger = await start_test_server(config_for_tests("ledger", ledger_url, redis_server_url), build_ledger, verifier)
    addresses = {"auth": auth.address, "ledger": f"127.0.0.1:{ledger.port}", "risk": f"127.0.0.1:{risk.port}"}
    addresses["contacts"] = UNUSED_LEDGER_ADDRESS
    gateway = await start_gateway(
        gateway_environ(addresses, redis_server_url, GATEWAY_RATE_LIMIT_KEY=uuid.uuid4().hex)
    )
    try:
        yield TracedSuite(auth, risk, risk_apps[0], ledger, ledger_apps[0], gateway, group)
    finally:
        await gateway.stop()
        for server in (ledger, risk):
            await server.stop()
        await auth.channel.close()
        await auth.server.stop()
        await redis_client.xgroup_destroy(LEDGER_EVENTS_STREAM, group)
        await redis_client.aclose()
        admin = await asyncpg.connect(postgres_server_url)
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.context.trace_id == trace_id]


async def wait_for(exporter: InMemorySpanExporter, trace_id: int, name: str) -> list[ReadableSpan]:
    """The trace's spans once one named ``name`` has ended (the gateway's span ends after the response is sent)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SPANS_WAIT_S
    while loop.time() < deadline:
        spans = spans_of(exporter, trace_id)
        if any(span.name == name for span in spans):
            return spans
        await asyncio.sleep(0.05)
    raise AssertionError(f"no span {name!r} in trace {trace_id:032x}")


def one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    found = [span for span in spans if span.name == name and span.kind is kind]
    assert len(found) == 1, (name, kind, [(span.name, span.kind) for span in spans])
    return found[0]


def attribute(span: ReadableSpan, key: str) -> object:
    return (span.attributes or {}).get(key)


def descends_from(span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if current.parent.span_id == ancestor.context.span_id:
            return True
        current = by_id.get(current.parent.span_id)
    return False


async def funded_owner(http: httpx.AsyncClient) -> tuple[Owner, str, str]:
    owner = await sign_up_with_mfa(http)  # a fresh step-up token: a CHALLENGE from risk is passed, not refused
    suspense = await open_account(http, owner, "ACCOUNT_KIND_SUSPENSE")
    operating = await open_account(http, owner, "ACCOUNT_KIND_OPERATING")
    payee = await open_account(http, owner, "ACCOUNT_KIND_OPERATING")
    ok(await transfer(http, owner, suspense, operating, 50_000))
    return owner, operating, payee


async def test_a_transfer_through_the_gateway_is_one_trace_through_every_hop(
    traced: TracedSuite, span_exporter: InMemorySpanExporter, redis_client: redis_asyncio.Redis
) -> None:
    async with httpx.AsyncClient(base_url=traced.gateway.http_url, timeout=30.0) as http:
        owner, operating, payee = await funded_owner(http)
        response = await transfer(http, owner, operating, payee, 1_250)
    assert ok(response)["transfer"]["status"] == "TRANSFER_STATUS_POSTED"
    traceparent = response.headers["traceparent"]
    trace_id = int(traceparent.split("-")[1], 16)

    spans = await wait_for(span_exporter, trace_id, "POST /v1/transfers")
    by_id = {span.context.span_id: span for span in spans}
    gateway = one(spans, "POST /v1/transfers", SpanKind.SERVER)
    assert gateway.parent is None
    assert attribute(gateway, "http.route") == "/v1/transfers"
    assert attribute(gateway, "http.response.status_code") == 200

    ledger = one(spans, "/wallet.ledger.v1.LedgerService/CreateTransfer", SpanKind.SERVER)
    assert ledger.parent is not None
    assert ledger.parent.span_id == gateway.context.span_id
    assert attribute(ledger, "rpc.system") == "grpc"
    assert attribute(ledger, "rpc.service") == "wallet.ledger.v1.LedgerService"
    assert attribute(ledger, "rpc.method") == "CreateTransfer"

    assess_client = one(spans, "/wallet.risk.v1.RiskService/Assess", SpanKind.CLIENT)
    assess_server = one(spans, "/wallet.risk.v1.RiskService/Assess", SpanKind.SERVER)
    assert descends_from(assess_client, ledger, by_id)
    assert assess_server.parent is not None
    assert assess_server.parent.span_id == assess_client.context.span_id
    assert attribute(assess_server, "rpc.service") == "wallet.risk.v1.RiskService"

    postgres = [span for span in spans if attribute(span, "db.system") == "postgresql"]
    redis = [span for span in spans if attribute(span, "db.system") == "redis"]
    assert any(descends_from(span, ledger, by_id) for span in postgres), "no ledger Postgres span"
    assert any(descends_from(span, assess_server, by_id) for span in postgres + redis), "no risk storage span"
    assert any(descends_from(span, assess_server, by_id) for span in redis), "no risk Redis span"
    assert_no_personal_data(spans, owner)

    # The relay and risk's consumer continue the payment's trace through links from the event's traceparent.
    async with traced.ledger_app.runtime.pool.acquire() as connection:
        relayed = await OutboxRelay("ledger", traced.ledger_app.runtime.pool, redis_client).relay_once(connection)
    assert relayed.published >= 1
    relays = [
        span
        for span in span_exporter.get_finished_spans()
        if span.name == "publish outbox" and trace_id in {link.context.trace_id for link in span.links}
    ]
    assert relays, "no relay span linked to the payment's trace"
    relay = relays[-1]
    assert relay.kind is SpanKind.PRODUCER

    consumer = traced.risk_app.consumer()
    consumed: list[ReadableSpan] = []
    # The stream is shared with whatever else writes ledger events to this Redis: read until ours was handled.
    for _ in range(CONSUME_ROUNDS_MAX):
        if await consumer.consume_once(block_ms=None) == 0:
            break
        consumed = linked_consumer_spans(span_exporter, trace_id)
        if consumed:
            break
    assert consumed, "no consumer span linked to the payment's trace"
    assert consumed[-1].kind is SpanKind.CONSUMER
    assert attribute(consumed[-1], "messaging.consumer.group.name") == traced.consumer_group
    assert_no_personal_data([relay, *consumed], owner)


def linked_consumer_spans(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.name == f"process {LEDGER_EVENTS_STREAM}"
        and trace_id in {link.context.trace_id for link in span.links}
    ]


def assert_no_personal_data(spans: list[ReadableSpan], owner: Owner) -> None:
    secrets = (owner.email, OWNER_PASSWORD, owner.access_token, owner.access_token.split(".")[1])
    for span in spans:
        values = [str(value) for value in (span.attributes or {}).values()]
        values += [str(value) for event in span.events for value in (event.attributes or {}).values()]
        values.append(span.name)
        for value in values:
            for secret in secrets:
                assert secret not in value, f"{span.name} carries personal data"
        keys = " ".join((span.attributes or {}).keys()).lower()
        assert "authorization" not in keys
        assert "password" not in keys
