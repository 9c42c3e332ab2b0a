"""``walletctl trace`` over span files written by the kit's own JSON-lines exporter from a real ledger call."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.telemetry import JsonLinesSpanExporter, RedactingSpanExporter
from tests.integration.auth.conftest import bearer
from tests.integration.cli.conftest import Suite, walletctl_run
from wallet.ledger.v1 import ledger_accounts_pb2

pytestmark = pytest.mark.integration


async def test_trace_prints_the_tree_of_a_real_call(suite: Suite, span_exporter: InMemorySpanExporter) -> None:
    tenant = await suite.tenant()
    account_id = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as channel:
        await suite.ledger_stub(channel).OpenAccount(
            ledger_accounts_pb2.OpenAccountRequest(
                account_id=account_id, kind=ledger_accounts_pb2.ACCOUNT_KIND_OPERATING, currency="EUR"
            ),
            metadata=bearer(tenant.access_token),
        )
    servers = [span for span in span_exporter.get_finished_spans() if span.name.endswith("/OpenAccount")]
    assert servers
    trace_id = servers[-1].context.trace_id
    spans = [span for span in span_exporter.get_finished_spans() if span.context.trace_id == trace_id]
    assert any(span.attributes and span.attributes.get("db.system") == "postgresql" for span in spans)
    # Written as `make run` writes them, split over two files as two processes would.
    traces = suite.run_dir / "traces"
    for name, part in (("ledger.jsonl", spans[::2]), ("auth.jsonl", spans[1::2])):
        exporter = RedactingSpanExporter(JsonLinesSpanExporter(traces / name))
        exporter.export(part)
        exporter.shutdown()

    trace_hex = f"{trace_id:032x}"
    printed = await walletctl_run(["trace", trace_hex, "--json"], suite.environ())
    assert printed.exit_code == 0, printed.stderr
    tree = json.loads(printed.stdout)
    assert len(tree["spans"]) == 1
    root = tree["spans"][0]
    assert root["name"].endswith("/OpenAccount")
    assert root["kind"] == "SERVER"

    def walk(node: dict[str, object]) -> list[dict[str, object]]:
        children = node["children"]
        assert isinstance(children, list)
        return [node, *(found for child in children for found in walk(child))]

    nodes = walk(root)
    assert len(nodes) == len(spans)
    assert any(node["attributes"].get("db.system") == "postgresql" for node in nodes)  # type: ignore[union-attr]

    human = await walletctl_run(["trace", f"00-{trace_hex}-{'1' * 16}-01"], suite.environ())
    assert human.exit_code == 0
    assert "OpenAccount" in human.stdout
    assert f"({len(spans)} spans)" in human.stdout


async def test_trace_errors(suite: Suite) -> None:
    unknown = await walletctl_run(["trace", uuid.uuid4().hex], suite.environ())
    assert unknown.exit_code == 1
    assert "no spans of trace" in unknown.stdout

    malformed = await walletctl_run(["trace", "not-a-trace"], suite.environ())
    assert malformed.exit_code == 2
    assert malformed.stderr.startswith("walletctl: not a trace id")

    nowhere = await walletctl_run(["trace", uuid.uuid4().hex, "--run-dir", str(suite.run_dir / "missing")], {})
    assert nowhere.exit_code == 2
    assert "no span files" in nowhere.stderr
