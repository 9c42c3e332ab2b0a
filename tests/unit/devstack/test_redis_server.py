import os
from pathlib import Path

import pytest

from devstack import processes
from devstack.redis_server import PID_FILE, _stop_leftover, redis_server_binary

DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_the_bundled_or_installed_binary_is_found() -> None:
    binary = redis_server_binary()
    assert binary.name == "redis-server"
    assert os.access(binary, os.X_OK)


def test_a_pid_file_of_a_dead_redis_is_removed(tmp_path: Path) -> None:
    (tmp_path / PID_FILE).write_text(f"{DEAD_PID}\n")
    _stop_leftover(tmp_path)
    assert not (tmp_path / PID_FILE).exists()


def test_a_reused_pid_that_is_not_redis_is_never_signalled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminated: list[int] = []
    monkeypatch.setattr(processes, "terminate", lambda pid, **_: terminated.append(pid))
    (tmp_path / PID_FILE).write_text(f"{os.getpid()}\n")  # alive, but it is pytest
    _stop_leftover(tmp_path)
    assert terminated == []
    assert not (tmp_path / PID_FILE).exists()


def test_a_leftover_redis_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminated: list[int] = []
    monkeypatch.setattr(processes, "is_alive", lambda pid: pid == 4343)
    monkeypatch.setattr(processes, "executable_name", lambda pid: "redis-server")
    monkeypatch.setattr(processes, "terminate", lambda pid, **_: terminated.append(pid))
    (tmp_path / PID_FILE).write_text("4343\n")
    _stop_leftover(tmp_path)
    assert terminated == [4343]
    assert not (tmp_path / PID_FILE).exists()


def test_no_or_garbled_pid_file_is_ignored(tmp_path: Path) -> None:
    _stop_leftover(tmp_path)
    (tmp_path / PID_FILE).write_text("garbage")
    _stop_leftover(tmp_path)
    assert (tmp_path / PID_FILE).exists()
