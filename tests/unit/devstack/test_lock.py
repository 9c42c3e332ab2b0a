import os
from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.lock import LOCK_FILE, RunLock


def _pid_that_cannot_exist() -> int:
    # Linux never hands out a pid above pid_max.
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_acquire_writes_our_pid_and_release_removes_the_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "not-yet-created"
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        assert lock.path == run_dir / LOCK_FILE
        assert lock.path.read_text() == f"{os.getpid()}\n"
        assert lock.stale_pid is None
    finally:
        lock.release()
    assert not lock.path.exists()
    lock.release()  # a second release is harmless


def test_a_second_lock_on_the_same_run_dir_names_the_holder(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DevstackError) as caught:
            RunLock(tmp_path).acquire()
        message = str(caught.value)
        assert "the wallet suite is already running" in message
        assert str(tmp_path) in message
        assert f"(pid {os.getpid()})" in message
        assert f"`kill {os.getpid()}`" in message
        assert "WALLET_RUN_DIR" in message
        # The refused attempt must not have released or overwritten the holder's lock.
        with pytest.raises(DevstackError):
            RunLock(tmp_path).acquire()
        assert first.path.read_text() == f"{os.getpid()}\n"
    finally:
        first.release()


def test_after_release_the_run_dir_can_be_locked_again(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    first.release()
    second = RunLock(tmp_path)
    second.acquire()
    second.release()


def test_other_run_dirs_are_independent(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path / "a"), RunLock(tmp_path / "b")
    first.acquire()
    try:
        second.acquire()
        second.release()
    finally:
        first.release()


def test_a_holder_that_wrote_no_pid_yet_is_another_process(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    try:
        os.truncate(first.path, 0)
        with pytest.raises(DevstackError, match=r"\(another process\)") as caught:
            RunLock(tmp_path).acquire()
        assert "kill" not in str(caught.value)
    finally:
        first.release()


def test_a_lock_file_left_by_a_dead_runner_is_taken_over(tmp_path: Path) -> None:
    dead_pid = _pid_that_cannot_exist()
    (tmp_path / LOCK_FILE).write_text(f"{dead_pid}\n")
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.stale_pid == dead_pid
        assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


def test_a_longer_stale_pid_is_fully_overwritten(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("99999999999999\n")
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.path.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


@pytest.mark.parametrize("content", ["", "garbage\n", f"{os.getpid()}\n"])
def test_no_stale_pid_for_an_empty_unreadable_or_own_lock_file(tmp_path: Path, content: str) -> None:
    (tmp_path / LOCK_FILE).write_text(content)
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.stale_pid is None
    finally:
        lock.release()


def test_a_live_pid_in_an_unlocked_file_is_not_called_stale(tmp_path: Path) -> None:
    # pid 1 is alive but cannot hold our flock: it is a reused pid, not a dead runner.
    (tmp_path / LOCK_FILE).write_text("1\n")
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.stale_pid is None
    finally:
        lock.release()
