import json
import os
import signal
from pathlib import Path

import pytest

from devstack import leftovers, processes
from devstack.report import STATE_FILE


@pytest.fixture
def fake_processes(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[str]]:
    """pid -> argv of the processes that exist; killpg is recorded, never sent."""
    table: dict[int, list[str]] = {}
    monkeypatch.setattr(processes, "is_alive", lambda pid: pid in table)
    monkeypatch.setattr(processes, "command_line", lambda pid: table.get(pid, []))
    return table


@pytest.fixture
def signalled(monkeypatch: pytest.MonkeyPatch, fake_processes: dict[int, list[str]]) -> list[tuple[int, int]]:
    sent: list[tuple[int, int]] = []

    def killpg(pid: int, number: int) -> None:
        sent.append((pid, number))
        fake_processes.pop(pid, None)  # it obeys at once

    monkeypatch.setattr(os, "killpg", killpg)
    return sent


def test_only_our_live_servers_are_stopped(
    tmp_path: Path, fake_processes: dict[int, list[str]], signalled: list[tuple[int, int]]
) -> None:
    fake_processes.update(
        {
            101: ["/repo/.venv/bin/python", "-m", "services.ledger"],
            102: ["/repo/.venv/bin/python", "-m", "gateway"],
            # The pid of "auth" was reused by something else since the runner died.
            103: ["/usr/bin/vim", "notes.txt"],
            # A leftover embedded postgres is the postgres module's business, not this one's.
            104: ["postgres", "-D", "/repo/.run/postgres"],
        }
    )
    pids = {"ledger": 101, "gateway": 102, "auth": 103, "postgres": 104, "risk": 105}
    (tmp_path / STATE_FILE).write_text(json.dumps({"pids": pids}))
    assert leftovers.stop_leftovers(tmp_path) == ["ledger", "gateway"]
    assert signalled == [(101, signal.SIGTERM), (102, signal.SIGTERM)]
    assert sorted(fake_processes) == [103, 104]


def test_the_module_name_must_be_an_exact_argument(fake_processes: dict[int, list[str]]) -> None:
    fake_processes[7] = ["python", "-m", "services.ledger.tools"]
    fake_processes[8] = ["python", "services.auth"]
    assert not leftovers._is_our_server(7, "ledger")
    assert not leftovers._is_our_server(8, "auth")


def test_nothing_recorded_nothing_stopped(tmp_path: Path, signalled: list[tuple[int, int]]) -> None:
    assert leftovers.stop_leftovers(tmp_path) == []
    assert signalled == []


def test_this_test_process_is_never_taken_for_a_server(tmp_path: Path) -> None:
    # The real /proc: pytest's own argv is not a service's, so nothing is signalled.
    (tmp_path / STATE_FILE).write_text(json.dumps({"pids": {"auth": os.getpid(), "gateway": os.getpid()}}))
    assert leftovers.stop_leftovers(tmp_path) == []
