"""A measured figure, and the report files: ``latest.json`` (figure → numbers) and ``latest.md`` (a table)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS_JSON = "latest.json"
RESULTS_MARKDOWN = "latest.md"


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of DESIGN.md §8's table. ``target`` is text (``"≥ 0.50"``), read by people, not code."""

    name: str
    value: float
    unit: str
    target: str
    p50_ms: float | None = None
    p99_ms: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


def write_results(figures: Sequence[Figure], results_dir: Path, *, notes: Mapping[str, str]) -> tuple[Path, Path]:
    """Write this run's figures (and only them: a run is one consistent set, measured against its own baseline)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / RESULTS_JSON
    json_path.write_text(
        json.dumps({figure.name: figure.as_json() for figure in figures}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    markdown_path = results_dir / RESULTS_MARKDOWN
    markdown_path.write_text(markdown_table(figures, notes=notes), encoding="utf-8")
    return json_path, markdown_path


def markdown_table(figures: Sequence[Figure], *, notes: Mapping[str, str]) -> str:
    lines = ["# Benchmark results", ""]
    lines += [f"- {key}: {value}" for key, value in notes.items()]
    lines += ["", "| figure | value | unit | target | p50 ms | p99 ms |", "|---|---:|---|---|---:|---:|"]
    for figure in figures:
        cells = [
            f"`{figure.name}`",
            format_number(figure.value),
            figure.unit,
            figure.target,
            format_number(figure.p50_ms),
            format_number(figure.p99_ms),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
