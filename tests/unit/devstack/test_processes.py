import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import processes


def _fake_process(proc: Path, pid: int, *, comm: str, state: str, pgrp: int, argv: list[str] | None = None) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    # Real layout: "pid (comm) state ppid pgrp session ..."
    (entry / "stat").write_text(f"{pid} ({comm}) {state} 1 {pgrp} {pgrp} 0 -1 4194560 0 0 0 0\n")
    if argv is not None:
        (entry / "cmdline").write_bytes(b"".join(part.encode() + b"\0" for part in argv))


@pytest.fixture
def fake_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(processes, "PROC_DIR", tmp_path)
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped
    return tmp_path


def test_this_process_is_alive_and_has_a_command_line() -> None:
    assert processes.is_alive(os.getpid())
    argv = processes.command_line(os.getpid())
    assert argv
    assert Path(argv[0]).name.startswith("python")
    assert processes.executable_name(os.getpid()) == Path(argv[0]).name


@pytest.mark.parametrize("pid", [0, -1])
def test_non_positive_pids_are_never_alive(pid: int) -> None:
    assert not processes.is_alive(pid)


def test_a_pid_that_does_not_exist_is_gone_and_has_no_command_line() -> None:
    missing = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    assert not processes.is_alive(missing)
    assert processes.command_line(missing) == []
    assert processes.executable_name(missing) == ""
    assert processes.wait_gone(missing, timeout_s=0)
    processes.send_signal(missing, signal.SIGTERM)  # no error for a process that is gone


def test_an_unreaped_child_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Wait for it to exit without reaping it: it stays a zombie until child.wait().
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert Path(f"/proc/{child.pid}").exists()
        assert not processes.is_alive(child.pid)
    finally:
        child.wait()


def test_a_command_name_with_parentheses_and_spaces_is_parsed(fake_proc: Path) -> None:
    _fake_process(fake_proc, 40, comm="evil) Z (name", state="S", pgrp=40)
    _fake_process(fake_proc, 41, comm="x) S (y", state="Z", pgrp=40)
    assert processes.is_alive(40)
    assert not processes.is_alive(41)


@pytest.mark.parametrize(
    ("state", "alive"), [("R", True), ("S", True), ("D", True), ("T", True), ("Z", False), ("X", False)]
)
def test_states(fake_proc: Path, state: str, alive: bool) -> None:
    _fake_process(fake_proc, 50, comm="postgres", state=state, pgrp=50)
    assert processes.is_alive(50) is alive


def test_group_members_are_the_live_processes_of_the_group(fake_proc: Path) -> None:
    _fake_process(fake_proc, 100, comm="python3", state="S", pgrp=100)
    _fake_process(fake_proc, 101, comm="uvicorn worker", state="R", pgrp=100)
    _fake_process(fake_proc, 102, comm="dead", state="Z", pgrp=100)
    _fake_process(fake_proc, 103, comm="other", state="S", pgrp=200)
    _fake_process(fake_proc, 1100, comm="pgrp looks similar", state="S", pgrp=1100)
    assert sorted(processes.group_members(100)) == [100, 101]
    assert processes.group_members(300) == []


def test_command_line_splits_on_nul(fake_proc: Path) -> None:
    _fake_process(fake_proc, 60, comm="python", state="S", pgrp=60, argv=["/usr/bin/python3", "-m", "services.auth"])
    assert processes.command_line(60) == ["/usr/bin/python3", "-m", "services.auth"]
    assert processes.executable_name(60) == "python3"
