"""Runs the planned sections within the time budget and writes the report."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure, format_number, write_results
from bench.h2load import ensure_h2load
from bench.registry import ALL, Section, plan
from devstack import start_embedded_postgres

# `make bench` must finish within 10 minutes (DESIGN.md §8); sections that would start after this are skipped.
BUDGET_S = 540.0
RUN_DIR_DEFAULT = ".run"


def run_bench(selection: str, *, repo_dir: Path, environ: Mapping[str, str], console: Console) -> int:
    sections = plan(selection)
    work_dir = _work_dir(repo_dir, environ)
    began = time.monotonic()
    with ExitStack() as cleanup:
        context = _context(repo_dir, work_dir, environ, cleanup, sections, selection)
        for section in sections:
            _run_section(section, context, elapsed_s=time.monotonic() - began)
    figures = list(context.figures.values())
    notes = _notes(context, elapsed_s=time.monotonic() - began)
    json_path, markdown_path = write_results(figures, repo_dir / "bench" / "results", notes=notes)
    _print_table(console, figures)
    print(f"wrote {json_path} and {markdown_path} in {time.monotonic() - began:.0f} s")
    return 0


def _work_dir(repo_dir: Path, environ: Mapping[str, str]) -> Path:
    run_dir = Path(environ.get("WALLET_RUN_DIR") or RUN_DIR_DEFAULT)
    if not run_dir.is_absolute():
        run_dir = repo_dir / run_dir
    return run_dir.resolve() / "bench"


def _context(
    repo_dir: Path,
    work_dir: Path,
    environ: Mapping[str, str],
    cleanup: ExitStack,
    sections: list[Section],
    selection: str,
) -> BenchContext:
    # h2load is part of the bench's own set-up: installed for a full run, or when a chosen section drives gRPC.
    wants_h2load = selection == ALL or any(section.needs_h2load for section in sections)
    h2load = ensure_h2load() if wants_h2load else None
    server_url = environ.get("DATABASE_URL") or None
    source = "DATABASE_URL"
    if server_url is None:
        # The bench owns this data dir (no `make run` uses it), so a server left running on it is adopted.
        postgres = start_embedded_postgres(work_dir / "postgres", adopt_running=True)
        cleanup.callback(postgres.stop)
        server_url, source = postgres.url, "embedded"
    return BenchContext(
        repo_dir=repo_dir,
        work_dir=work_dir,
        postgres_server_url=server_url,
        postgres_source=source,
        h2load=h2load,
        cleanup=cleanup,
        redis_url_given=environ.get("REDIS_URL") or None,
    )


def _run_section(section: Section, context: BenchContext, *, elapsed_s: float) -> None:
    if elapsed_s > BUDGET_S:
        print(f"section {section.name}: skipped, the bench has used its {BUDGET_S:.0f} s budget")
        return
    if section.needs_h2load and context.h2load is None:
        print(f"section {section.name}: skipped, h2load is not available")
        return
    missing = [name for name in section.requires if not _has_figures_of(context, name)]
    if missing:
        print(f"section {section.name}: skipped, it needs {', '.join(missing)}, which did not run")
        return
    print(f"section {section.name}: {section.summary}")
    began = time.monotonic()
    figures = section.run(context)
    for figure in figures:
        if figure.name in context.figures:
            raise BenchError(f"figure {figure.name} was measured twice")
        context.figures[figure.name] = figure
    print(f"section {section.name}: done in {time.monotonic() - began:.0f} s")


def _has_figures_of(context: BenchContext, section_name: str) -> bool:
    return any(name.startswith(f"{section_name}.") for name in context.figures)


def _notes(context: BenchContext, *, elapsed_s: float) -> dict[str, str]:
    return {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "postgres": context.postgres_source,
        "h2load": str(context.h2load) if context.h2load is not None else "not available",
        "duration": f"{elapsed_s:.0f} s",
    }


def _print_table(console: Console, figures: list[Figure]) -> None:
    table = Table(title="bench results", title_justify="left")
    # The figure's name is never cut: it is what a reader looks up in DESIGN.md §8.
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("target")
    table.add_column("p50 ms", justify="right", no_wrap=True)
    table.add_column("p99 ms", justify="right", no_wrap=True)
    for figure in figures:
        table.add_row(
            figure.name,
            format_number(figure.value),
            figure.unit,
            figure.target,
            format_number(figure.p50_ms),
            format_number(figure.p99_ms),
        )
    console.print(table)
