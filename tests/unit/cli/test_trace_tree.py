"""The span-tree builder of ``walletctl trace``: parsing the SDK's JSON lines, parents before children, orphans as
roots, other traces and broken lines ignored, trace ids in every accepted spelling."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cli.trace_tree import (
    TraceIdInvalid,
    build_forest,
    count_spans,
    normalize_trace_id,
    parse_span,
    spans_of_trace,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def recorded_lines() -> tuple[str, list[str]]:
    """A gateway → ledger → postgres trace made by the real SDK, plus one unrelated trace, as JSON lines."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "wallet-ledger"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/transfers", kind=SpanKind.SERVER) as root:
        with (
            tracer.start_as_current_span("/wallet.ledger.v1.LedgerService/CreateTransfer", kind=SpanKind.CLIENT),
            tracer.start_as_current_span(
                "INSERT", attributes={"db.system": "postgresql", "db.statement": "INSERT INTO t\n  VALUES ($1)"}
            ),
        ):
            pass
        with tracer.start_as_current_span("XADD", attributes={"db.system": "redis"}):
            pass
    with tracer.start_as_current_span("unrelated"):
        pass
    trace_id = f"{root.get_span_context().trace_id:032x}"
    return trace_id, [span.to_json(indent=None) for span in exporter.get_finished_spans()]


def test_builds_the_tree_in_start_order_with_durations() -> None:
    trace_id, lines = recorded_lines()
    roots = build_forest(spans_of_trace(reversed(lines), trace_id))
    assert [root.name for root in roots] == ["POST /v1/transfers"]
    root = roots[0]
    assert root.kind == "SERVER"
    assert root.service == "wallet-ledger"
    assert [child.name for child in root.children] == ["/wallet.ledger.v1.LedgerService/CreateTransfer", "XADD"]
    assert [grandchild.name for grandchild in root.children[0].children] == ["INSERT"]
    assert root.children[0].children[0].highlights() == [
        ("db.system", "postgresql"),
        ("db.statement", "INSERT INTO t VALUES ($1)"),
    ]
    assert count_spans(roots) == 4
    assert root.duration_ms >= root.children[0].duration_ms >= 0


def test_a_span_whose_parent_is_missing_becomes_a_root_and_duplicates_count_once() -> None:
    trace_id, lines = recorded_lines()
    without_root = [line for line in lines if '"POST /v1/transfers"' not in line]
    roots = build_forest(spans_of_trace(without_root + without_root, trace_id))
    assert sorted(root.name for root in roots) == ["/wallet.ledger.v1.LedgerService/CreateTransfer", "XADD"]
    assert count_spans(roots) == 3


@pytest.mark.parametrize("line", ["", "not json", "[]", json.dumps({"context": {}}), '{"name": "x"'])
def test_broken_lines_are_skipped(line: str) -> None:
    assert parse_span(line) is None


def test_unfinished_span_is_skipped() -> None:
    _, lines = recorded_lines()
    record = json.loads(lines[0])
    record["end_time"] = None
    assert parse_span(json.dumps(record)) is None


@pytest.mark.parametrize(
    "spelling", [TRACE, TRACE.upper(), f"0x{TRACE}", f"00-{TRACE}-00f067aa0ba902b7-01", f"  {TRACE}\n"]
)
def test_trace_id_spellings(spelling: str) -> None:
    assert normalize_trace_id(spelling) == TRACE


@pytest.mark.parametrize("spelling", ["", "abc", TRACE + "0", TRACE[:-1] + "g", "0" * 32, "00-zz-yy-01"])
def test_invalid_trace_ids(spelling: str) -> None:
    with pytest.raises(TraceIdInvalid):
        normalize_trace_id(spelling)
