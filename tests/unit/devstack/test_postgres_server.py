import json
import os
import subprocess
from pathlib import Path

import pytest

from devstack import processes
from devstack.postgres_server import (
    HANDLE_LIST_FILE,
    LOG_FILE,
    POSTMASTER_PID_FILE,
    _explain_start_failure,
    _prune_dead_handles,
    _remove_stale_pid_file,
    _running_postmaster_pid,
    _start_failure_message,
)

DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _write_log(data_dir: Path, *lines: str) -> None:
    (data_dir / LOG_FILE).write_text("".join(f"{line}\n" for line in lines))


def test_a_pid_file_naming_a_dead_process_is_removed(tmp_path: Path) -> None:
    (tmp_path / POSTMASTER_PID_FILE).write_text(f"{DEAD_PID}\n{tmp_path}\n1700000000\n5432\n")
    assert _running_postmaster_pid(tmp_path) is None
    _remove_stale_pid_file(tmp_path)
    assert not (tmp_path / POSTMASTER_PID_FILE).exists()


def test_a_pid_file_naming_a_live_process_that_is_not_postgres_is_removed(tmp_path: Path) -> None:
    (tmp_path / POSTMASTER_PID_FILE).write_text(f"{os.getpid()}\n{tmp_path}\n")
    assert _running_postmaster_pid(tmp_path) is None
    _remove_stale_pid_file(tmp_path)
    assert not (tmp_path / POSTMASTER_PID_FILE).exists()


def test_a_live_postgres_on_this_data_dir_is_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / POSTMASTER_PID_FILE).write_text(f"4242\n{tmp_path}\n")
    monkeypatch.setattr(processes, "is_alive", lambda pid: pid == 4242)
    argv = {4242: ["/opt/pg/bin/postgres", "-D", str(tmp_path), "-k", str(tmp_path)]}
    monkeypatch.setattr(processes, "command_line", lambda pid: argv.get(pid, []))
    assert _running_postmaster_pid(tmp_path) == 4242
    _remove_stale_pid_file(tmp_path)
    assert (tmp_path / POSTMASTER_PID_FILE).exists()
    # The same pid serving another data dir is not ours.
    argv[4242] = ["/opt/pg/bin/postgres", "-D", "/elsewhere"]
    assert _running_postmaster_pid(tmp_path) is None


@pytest.mark.parametrize("content", ["", "not a pid\n"])
def test_an_unreadable_pid_file_is_no_server(tmp_path: Path, content: str) -> None:
    (tmp_path / POSTMASTER_PID_FILE).write_text(content)
    assert _running_postmaster_pid(tmp_path) is None


def test_no_pid_file_is_no_server(tmp_path: Path) -> None:
    assert _running_postmaster_pid(tmp_path) is None
    _remove_stale_pid_file(tmp_path)


def test_dead_handles_are_pruned_and_live_ones_returned(tmp_path: Path) -> None:
    handle_file = tmp_path / HANDLE_LIST_FILE
    handle_file.write_text(json.dumps([os.getpid(), DEAD_PID, "x"]))
    assert _prune_dead_handles(tmp_path) == [os.getpid()]
    assert json.loads(handle_file.read_text()) == [os.getpid()]


@pytest.mark.parametrize("content", ["{broken", '{"a": 1}'])
def test_an_unreadable_handle_list_means_no_holders(tmp_path: Path, content: str) -> None:
    (tmp_path / HANDLE_LIST_FILE).write_text(content)
    assert _prune_dead_handles(tmp_path) == []
    assert _prune_dead_handles(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("fatal", "advice"),
    [
        (
            "FATAL:  database files are incompatible with server",
            "the data was made by another Postgres version: delete",
        ),
        ('FATAL:  lock file "postmaster.pid" already exists', "another postgres uses"),
        ("FATAL:  could not create shared memory segment: No space left on device", "out of shared memory"),
        ("FATAL:  data directory has invalid permissions", "if the data directory is damaged, delete"),
    ],
)
def test_a_failed_start_says_why_from_the_server_log(tmp_path: Path, fatal: str, advice: str) -> None:
    _write_log(tmp_path, "LOG:  starting PostgreSQL 18.0", f"2026-01-01 00:00:00 UTC [1] {fatal}", "LOG:  shut down")
    message = _start_failure_message(tmp_path)
    assert message.startswith(f"embedded Postgres failed to start: {fatal.split('FATAL:', 1)[1].strip()}; ")
    assert advice in message
    assert "\n" not in message


def test_a_failed_start_without_a_fatal_line(tmp_path: Path) -> None:
    assert _start_failure_message(tmp_path).startswith("embedded Postgres failed to start: pg_ctl start failed; ")


def test_start_failures_are_explained_by_kind(tmp_path: Path) -> None:
    _write_log(tmp_path, *(f"line {number}" for number in range(10)), "FATAL:  lock file exists")
    called = _explain_start_failure(subprocess.CalledProcessError(1, ["pg_ctl"]), tmp_path)
    assert "lock file exists" in str(called)
    assert called.details == ("line 6", "line 7", "line 8", "line 9", "FATAL:  lock file exists")
    timeout = _explain_start_failure(subprocess.TimeoutExpired(["pg_ctl"], 60.0), tmp_path)
    assert str(timeout).startswith("embedded Postgres did not start within 60 s")
    denied = _explain_start_failure(PermissionError(13, "Permission denied"), tmp_path)
    assert f"could not use {tmp_path} (Permission denied)" in str(denied)
    garbled = _explain_start_failure(ValueError("invalid literal for int()"), tmp_path)
    assert str(tmp_path / POSTMASTER_PID_FILE) in str(garbled)
