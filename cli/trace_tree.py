"""The span tree of one trace, built from the JSON-lines span files the services write (``OTEL_TRACES_FILE``).

Pure: parsing and tree building only, no I/O beyond iterating lines the caller opened. A span whose parent is not
among the spans read (a caller outside the suite, or a file not yet flushed) becomes a root, so a partial trace still
prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TRACE_ID_HEX_LENGTH = 32
_HEX = re.compile(r"^[0-9a-f]+$")
# Attributes worth a glance in the tree, in the order shown; everything else stays in --json.
HIGHLIGHTED_ATTRIBUTES = (
    "rpc.method",
    "rpc.grpc.status_code",
    "http.route",
    "http.status_code",
    "http.response.status_code",
    "db.system",
    "db.operation",
    "db.statement",
    "net.peer.name",
)
DB_STATEMENT_CHARS_MAX = 60


class TraceIdInvalid(ValueError):
    """The trace id is neither 32 hex digits nor a W3C traceparent."""


def normalize_trace_id(raw: str) -> str:
    """Accepts ``4bf9…`` (32 hex digits), ``0x4bf9…`` or a whole ``traceparent`` (``00-<trace>-<span>-01``)."""
    text = raw.strip().lower()
    if text.count("-") == 3:
        text = text.split("-")[1]
    text = text.removeprefix("0x")
    if len(text) != TRACE_ID_HEX_LENGTH or not _HEX.match(text) or set(text) == {"0"}:
        raise TraceIdInvalid(f"not a trace id: {raw!r} (expected 32 hex digits or a traceparent)")
    return text


def _hex(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.lower().removeprefix("0x")


def _timestamp_ns(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # Microseconds are all the ISO form carries; enough for a tree of milliseconds.
    return int(moment.timestamp() * 1_000_000) * 1000


@dataclass(slots=True)
class SpanNode:
    """One span and its children, ordered by start time."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    status: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    links: list[str]
    children: list[SpanNode] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def highlights(self) -> list[tuple[str, str]]:
        shown: list[tuple[str, str]] = []
        for key in HIGHLIGHTED_ATTRIBUTES:
            if key in self.attributes:
                # One line per span: statements keep their words, not their line breaks.
                value = " ".join(str(self.attributes[key]).split())
                if key == "db.statement" and len(value) > DB_STATEMENT_CHARS_MAX:
                    value = value[:DB_STATEMENT_CHARS_MAX] + "…"
                shown.append((key, value))
        return shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "service": self.service,
            "kind": self.kind,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "attributes": self.attributes,
            "links": self.links,
            "children": [child.to_dict() for child in self.children],
        }


def parse_span(line: str) -> SpanNode | None:
    """One span from one line of ``Span.to_json(indent=None)``; None for a blank, malformed or unfinished line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    context = record.get("context") or {}
    trace_id = _hex(context.get("trace_id"))
    span_id = _hex(context.get("span_id"))
    start_ns = _timestamp_ns(record.get("start_time"))
    end_ns = _timestamp_ns(record.get("end_time"))
    if trace_id is None or span_id is None or start_ns is None or end_ns is None:
        return None
    resource = (record.get("resource") or {}).get("attributes") or {}
    links = [_hex((link.get("context") or {}).get("trace_id")) for link in record.get("links") or []]
    return SpanNode(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=_hex(record.get("parent_id")),
        name=str(record.get("name", "")),
        service=str(resource.get("service.name", "?")),
        kind=str(record.get("kind", "")).removeprefix("SpanKind."),
        status=str((record.get("status") or {}).get("status_code", "UNSET")),
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=dict(record.get("attributes") or {}),
        links=[link for link in links if link],
    )


def spans_of_trace(lines: Iterable[str], trace_id: str) -> list[SpanNode]:
    """The spans of ``trace_id`` among ``lines``; a cheap substring test skips other traces' lines unparsed."""
    found: list[SpanNode] = []
    for line in lines:
        if trace_id not in line:
            continue
        span = parse_span(line)
        if span is not None and span.trace_id == trace_id:
            found.append(span)
    return found


def build_forest(spans: Iterable[SpanNode]) -> list[SpanNode]:
    """Links spans to their parents; returns the roots, everything ordered by start time. Duplicate span ids (a
    file read twice) keep the first."""
    by_id: dict[str, SpanNode] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    roots: list[SpanNode] = []
    for span in by_id.values():
        span.children = []
    for span in sorted(by_id.values(), key=lambda node: node.start_ns):
        parent = by_id.get(span.parent_id) if span.parent_id else None
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    return roots


def count_spans(roots: Iterable[SpanNode]) -> int:
    return sum(1 + count_spans(root.children) for root in roots)
