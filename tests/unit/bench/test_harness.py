import io
import json
from contextlib import ExitStack
from pathlib import Path

import pytest
from rich.console import Console

from bench import harness, registry
from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure
from bench.registry import Section, register

SERVER_URL = "postgresql://u@127.0.0.1:1/postgres"  # never connected to: the sections here are fakes


def _context(tmp_path: Path, *, h2load: Path | None = None) -> BenchContext:
    return BenchContext(
        repo_dir=tmp_path,
        work_dir=tmp_path / "bench",
        postgres_server_url=SERVER_URL,
        postgres_source="DATABASE_URL",
        h2load=h2load,
        cleanup=ExitStack(),
    )


def _baseline(context: BenchContext) -> list[Figure]:
    return [Figure(name="baseline.sql_transfer_per_s", value=8000.0, unit="transfers/s", target="reference")]


def _ledger(context: BenchContext) -> list[Figure]:
    baseline = context.figure("baseline.sql_transfer_per_s").value
    return [Figure(name="ledger.transfer_ratio", value=4000.0 / baseline, unit="ratio", target="≥ 0.50", p50_ms=2.0)]


def _grpc(context: BenchContext) -> list[Figure]:
    context.h2load_binary()
    return [Figure(name="gateway.calls_per_s", value=1.0, unit="calls/s", target="-")]


@pytest.fixture
def sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_SECTIONS", {})
    register(Section(name="baseline", summary="the reference", run=_baseline))
    register(Section(name="ledger", summary="ledger / baseline", run=_ledger, requires=("baseline",)))
    register(Section(name="gateway", summary="gRPC", run=_grpc, needs_h2load=True))


def test_work_dir_is_bench_under_the_run_dir(tmp_path: Path) -> None:
    assert harness._work_dir(tmp_path, {}) == (tmp_path / ".run" / "bench").resolve()
    assert harness._work_dir(tmp_path, {"WALLET_RUN_DIR": ""}) == (tmp_path / ".run" / "bench").resolve()
    assert harness._work_dir(tmp_path, {"WALLET_RUN_DIR": "other"}) == (tmp_path / "other" / "bench").resolve()
    assert (
        harness._work_dir(tmp_path / "repo", {"WALLET_RUN_DIR": str(tmp_path / "abs")}) == tmp_path / "abs" / "bench"
    )


@pytest.mark.usefixtures("sections")
def test_a_run_measures_the_ratio_against_the_same_runs_baseline_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(harness, "ensure_h2load", lambda: pytest.fail("h2load is not needed for these sections"))
    output = io.StringIO()
    code = harness.run_bench(
        "ledger", repo_dir=tmp_path, environ={"DATABASE_URL": SERVER_URL}, console=Console(file=output, width=200)
    )
    assert code == 0
    results = json.loads((tmp_path / "bench" / "results" / "latest.json").read_text(encoding="utf-8"))
    assert results == {
        "baseline.sql_transfer_per_s": {
            "value": 8000.0,
            "unit": "transfers/s",
            "target": "reference",
            "p50_ms": None,
            "p99_ms": None,
        },
        "ledger.transfer_ratio": {"value": 0.5, "unit": "ratio", "target": "≥ 0.50", "p50_ms": 2.0, "p99_ms": None},
    }
    markdown = (tmp_path / "bench" / "results" / "latest.md").read_text(encoding="utf-8")
    assert "- postgres: DATABASE_URL" in markdown
    assert "- h2load: not available" in markdown
    assert "| `ledger.transfer_ratio` | 0.500 | ratio | ≥ 0.50 | 2.00 |  |" in markdown
    printed = capsys.readouterr().out
    assert printed.index("section baseline: the reference") < printed.index("section ledger: ledger / baseline")
    assert "ledger.transfer_ratio" in output.getvalue()


@pytest.mark.usefixtures("sections")
def test_an_unknown_section_fails_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown bench section ledgr"):
        harness.run_bench("ledgr", repo_dir=tmp_path, environ={}, console=Console(file=io.StringIO()))
    assert not (tmp_path / ".run").exists()
    assert not (tmp_path / "bench").exists()


@pytest.mark.usefixtures("sections")
def test_a_grpc_section_is_skipped_when_h2load_cannot_be_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(harness, "ensure_h2load", lambda: None)
    code = harness.run_bench(
        "gateway", repo_dir=tmp_path, environ={"DATABASE_URL": SERVER_URL}, console=Console(file=io.StringIO())
    )
    assert code == 0
    assert "section gateway: skipped, h2load is not available" in capsys.readouterr().out
    assert json.loads((tmp_path / "bench" / "results" / "latest.json").read_text(encoding="utf-8")) == {}


def test_a_section_whose_requirement_did_not_run_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = _context(tmp_path)
    section = Section(name="ledger", summary="", run=_ledger, requires=("baseline",))
    harness._run_section(section, context, elapsed_s=0)
    assert context.figures == {}
    assert "section ledger: skipped, it needs baseline, which did not run" in capsys.readouterr().out


def test_a_section_prefix_is_not_its_figures(tmp_path: Path) -> None:
    context = _context(tmp_path)
    context.figures["baseline_extra.x"] = Figure(name="baseline_extra.x", value=1, unit="", target="")
    assert not harness._has_figures_of(context, "baseline")
    context.figures["baseline.x"] = Figure(name="baseline.x", value=1, unit="", target="")
    assert harness._has_figures_of(context, "baseline")


def test_sections_past_the_budget_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(tmp_path)
    section = Section(name="baseline", summary="", run=_baseline)
    harness._run_section(section, context, elapsed_s=harness.BUDGET_S + 1)
    assert context.figures == {}
    assert f"skipped, the bench has used its {harness.BUDGET_S:.0f} s budget" in capsys.readouterr().out
    harness._run_section(section, context, elapsed_s=harness.BUDGET_S)
    assert list(context.figures) == ["baseline.sql_transfer_per_s"]


def test_a_figure_measured_twice_is_an_error(tmp_path: Path) -> None:
    context = _context(tmp_path)
    harness._run_section(Section(name="baseline", summary="", run=_baseline), context, elapsed_s=0)
    with pytest.raises(BenchError, match=r"^figure baseline.sql_transfer_per_s was measured twice$"):
        harness._run_section(Section(name="again", summary="", run=_baseline), context, elapsed_s=0)


def test_notes_say_where_postgres_and_h2load_came_from(tmp_path: Path) -> None:
    notes = harness._notes(_context(tmp_path, h2load=Path("/usr/bin/h2load")), elapsed_s=61.4)
    assert notes["postgres"] == "DATABASE_URL"
    assert notes["h2load"] == "/usr/bin/h2load"
    assert notes["duration"] == "61 s"
    assert notes["measured"].endswith(" UTC")
    assert "CPUs" in notes["machine"]
