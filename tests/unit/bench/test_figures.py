import json
from pathlib import Path

import pytest

from bench.figures import RESULTS_JSON, RESULTS_MARKDOWN, Figure, format_number, markdown_table, write_results

BASELINE = Figure(
    name="baseline.sql_transfer_per_s",
    value=8795.0,
    unit="transfers/s",
    target="reference, ≈ 8,000 here",
    p50_ms=6.511,
    p99_ms=15.948,
)
RATIO = Figure(name="ledger.transfer_ratio", value=0.42, unit="ratio", target="≥ 0.50")


def test_results_json_maps_each_figure_to_its_numbers(tmp_path: Path) -> None:
    json_path, markdown_path = write_results([BASELINE, RATIO], tmp_path / "results", notes={"postgres": "embedded"})
    assert json_path == tmp_path / "results" / RESULTS_JSON
    assert markdown_path == tmp_path / "results" / RESULTS_MARKDOWN
    assert json.loads(json_path.read_text(encoding="utf-8")) == {
        "baseline.sql_transfer_per_s": {
            "value": 8795.0,
            "unit": "transfers/s",
            "target": "reference, ≈ 8,000 here",
            "p50_ms": 6.511,
            "p99_ms": 15.948,
        },
        "ledger.transfer_ratio": {"value": 0.42, "unit": "ratio", "target": "≥ 0.50", "p50_ms": None, "p99_ms": None},
    }
    assert list(json.loads(json_path.read_text(encoding="utf-8"))) == [BASELINE.name, RATIO.name]  # run order
    assert "≥ 0.50" in json_path.read_text(encoding="utf-8")  # readable, not \u2265


def test_a_run_replaces_the_previous_results(tmp_path: Path) -> None:
    write_results([BASELINE, RATIO], tmp_path, notes={})
    write_results([RATIO], tmp_path, notes={})
    assert list(json.loads((tmp_path / RESULTS_JSON).read_text(encoding="utf-8"))) == [RATIO.name]
    assert BASELINE.name not in (tmp_path / RESULTS_MARKDOWN).read_text(encoding="utf-8")


def test_markdown_table_has_notes_a_header_and_one_row_per_figure() -> None:
    text = markdown_table([BASELINE, RATIO], notes={"measured": "2026-01-01 00:00 UTC", "postgres": "embedded"})
    lines = text.splitlines()
    assert lines[0] == "# Benchmark results"
    assert "- measured: 2026-01-01 00:00 UTC" in lines
    assert "- postgres: embedded" in lines
    header = lines.index("| figure | value | unit | target | p50 ms | p99 ms |")
    assert lines[header + 1] == "|---|---:|---|---|---:|---:|"
    assert (
        lines[header + 2]
        == "| `baseline.sql_transfer_per_s` | 8,795 | transfers/s | reference, ≈ 8,000 here | 6.51 | 15.95 |"
    )
    assert lines[header + 3] == "| `ledger.transfer_ratio` | 0.420 | ratio | ≥ 0.50 |  |  |"
    assert len(lines) == header + 4
    assert text.endswith("\n")


def test_markdown_table_without_figures_is_just_the_header() -> None:
    assert markdown_table([], notes={}).splitlines()[-1] == "|---|---:|---|---|---:|---:|"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0, "0.000"),
        (0.0421, "0.042"),
        (1, "1.00"),
        (15.948, "15.95"),
        (99.5, "99.50"),
        (100, "100"),
        (8795.4, "8,795"),
        (1234567.0, "1,234,567"),
        (-0.5, "-0.500"),
        (-250.0, "-250"),
    ],
)
def test_format_number(value: float | None, text: str) -> None:
    assert format_number(value) == text
