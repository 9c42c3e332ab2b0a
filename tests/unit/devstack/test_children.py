import signal
import sys
from pathlib import Path

from devstack.children import LOG_TAIL_BYTES_MAX, Child, ChildSpec, stop_children


def _spec(tmp_path: Path, name: str = "ledger", argv: tuple[str, ...] = ("true",)) -> ChildSpec:
    return ChildSpec(name=name, argv=argv, env={}, log_path=tmp_path / "logs" / f"{name}.log", cwd=tmp_path)


def test_a_child_that_was_never_started_is_inert(tmp_path: Path) -> None:
    child = Child(_spec(tmp_path))
    assert child.name == "ledger"
    assert child.exit_code() is None
    assert not child.running()
    assert child.wait(0) is None
    assert not child.group_alive()
    child.signal_group(signal.SIGTERM)  # nothing to signal
    assert stop_children([child], timeout_s=0) == []


def test_log_tail_is_the_last_lines(tmp_path: Path) -> None:
    child = Child(_spec(tmp_path))
    child.spec.log_path.parent.mkdir(parents=True)
    child.spec.log_path.write_text("".join(f"line {number}\n" for number in range(100)))
    assert child.log_tail(3) == ["line 97", "line 98", "line 99"]
    assert len(child.log_tail()) == 20


def test_log_tail_of_a_huge_log_reads_only_its_end(tmp_path: Path) -> None:
    child = Child(_spec(tmp_path))
    child.spec.log_path.parent.mkdir(parents=True)
    child.spec.log_path.write_bytes(b"x" * (4 * LOG_TAIL_BYTES_MAX) + b"\nTraceback\nValueError: boom\n")
    assert child.log_tail(2) == ["Traceback", "ValueError: boom"]
    assert sum(len(line) for line in child.log_tail(1000)) < LOG_TAIL_BYTES_MAX


def test_log_tail_survives_bad_utf8_and_a_missing_log(tmp_path: Path) -> None:
    child = Child(_spec(tmp_path))
    assert child.log_tail() == []
    child.spec.log_path.parent.mkdir(parents=True)
    child.spec.log_path.write_bytes(b"ok\n\xff\xfe broken\n")
    assert child.log_tail(2) == ["ok", "\ufffd\ufffd broken"]


def test_a_child_writes_its_output_to_a_fresh_log(tmp_path: Path) -> None:
    spec = _spec(tmp_path, argv=(sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"))
    spec.log_path.parent.mkdir(parents=True)
    spec.log_path.write_text("from an earlier run\n")
    child = Child(spec)
    child.start()
    assert child.wait(30) == 0
    assert sorted(child.log_tail()) == ["err", "out"]
    assert not child.group_alive()
