from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure


def _context(tmp_path: Path, *, h2load: Path | None = None, redis_url: str | None = None) -> BenchContext:
    return BenchContext(
        repo_dir=tmp_path,
        work_dir=tmp_path / "bench",
        postgres_server_url="postgresql://u@127.0.0.1:1/postgres",
        postgres_source="DATABASE_URL",
        h2load=h2load,
        cleanup=ExitStack(),
        redis_url_given=redis_url,
    )


def test_a_figure_measured_earlier_is_found(tmp_path: Path) -> None:
    context = _context(tmp_path)
    baseline = Figure(name="baseline.sql_transfer_per_s", value=8000.0, unit="transfers/s", target="reference")
    context.figures[baseline.name] = baseline
    assert context.figure("baseline.sql_transfer_per_s") is baseline


def test_a_figure_not_measured_says_its_section_must_run_first(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"^baseline.sql_transfer_per_s was not measured in this run; its section"):
        _context(tmp_path).figure("baseline.sql_transfer_per_s")


def test_h2load_binary_or_how_to_get_it(tmp_path: Path) -> None:
    assert _context(tmp_path, h2load=Path("/usr/bin/h2load")).h2load_binary() == Path("/usr/bin/h2load")
    with pytest.raises(BenchError, match="apt-get install nghttp2-client"):
        _context(tmp_path).h2load_binary()


def test_a_given_redis_url_is_used_without_starting_one(tmp_path: Path) -> None:
    context = _context(tmp_path, redis_url="redis://127.0.0.1:6379/3")
    assert context.redis_url() == "redis://127.0.0.1:6379/3"
    assert context.redis_url() == "redis://127.0.0.1:6379/3"
    assert not (tmp_path / "bench").exists()  # no embedded Redis data dir was made
