"""``walletctl trace <trace_id>``: the span tree of one trace from the JSON-lines files under ``<run dir>/traces``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from cli.output import EXIT_CHECK_FAILED, JsonFlag, console, fail, print_json
from cli.trace_tree import SpanNode, TraceIdInvalid, build_forest, count_spans, normalize_trace_id, spans_of_trace
from services.kit.config import Env

RUN_DIR_DEFAULT = ".run"


def traces_dir(env: Env, run_dir: Path | None) -> Path:
    return (run_dir or Path(env.string("WALLET_RUN_DIR", RUN_DIR_DEFAULT))) / "traces"


def read_trace(directory: Path, trace_id: str) -> list[SpanNode]:
    spans: list[SpanNode] = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            spans.extend(spans_of_trace(lines, trace_id))
    return spans


def _label(span: SpanNode) -> Text:
    label = Text()
    label.append(f"{span.duration_ms:9.2f} ms  ", style="bold")
    label.append(span.name, style="red" if span.status == "ERROR" else "cyan")
    label.append(f"  {span.service} {span.kind.lower()}", style="dim")
    for key, value in span.highlights():
        label.append(f"  {key}={value}", style="green")
    if span.links:
        label.append(f"  linked from {', '.join(span.links)}", style="magenta")
    return label


def _add(tree: Tree, span: SpanNode) -> None:
    branch = tree.add(_label(span))
    for child in span.children:
        _add(branch, child)


def render(trace_id: str, roots: list[SpanNode]) -> Tree:
    tree = Tree(Text(f"trace {trace_id} ({count_spans(roots)} spans)", style="bold"))
    for root in roots:
        _add(tree, root)
    return tree


def trace(
    trace_id: Annotated[str, typer.Argument(help="32 hex digits, or the traceparent header the gateway returned")],
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="default: WALLET_RUN_DIR or .run")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print one trace as a tree of spans with durations (reads the files `make run` writes)."""
    try:
        wanted = normalize_trace_id(trace_id)
    except TraceIdInvalid as err:
        raise fail(str(err)) from None
    directory = traces_dir(Env(), run_dir)
    if not directory.is_dir():
        raise fail(f"no span files in {directory} (does `make run` write there? set WALLET_RUN_DIR or --run-dir)")
    roots = build_forest(read_trace(directory, wanted))
    if not roots:
        if as_json:
            print_json({"trace_id": wanted, "spans": []})
        else:
            console.print(f"no spans of trace {wanted} in {directory} (spans are flushed within seconds; retry)")
        raise typer.Exit(EXIT_CHECK_FAILED)
    if as_json:
        print_json({"trace_id": wanted, "spans": [root.to_dict() for root in roots]})
    else:
        console.print(render(wanted, roots))
