"""A child process of the runner (a service, the gateway, a migration) with its log file.

Each child leads its own process group: a Ctrl-C in the terminal reaches only the runner, which then stops the
children in order, and signals sent to the group also reach anything a child started (e.g. extra server
processes sharing a port).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack import processes

POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES_DEFAULT = 20
# Reading a huge log to show its last lines would stall shutdown; the tail is in the last few KiB.
LOG_TAIL_BYTES_MAX = 16 * 1024


@dataclass(frozen=True, slots=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path
    # A job that exits when done (a migration), as opposed to a server whose exit means the suite is broken.
    one_shot: bool = False


class Child:
    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} was never started"
        return self._process.pid

    def start(self) -> None:
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A fresh log per run, so "the last lines of its log" are about this run.
        with self.spec.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                list(self.spec.argv),
                env=dict(self.spec.env),
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        """None while running (or never started)."""
        return None if self._process is None else self._process.poll()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout_s: float) -> int | None:
        """The exit code, or None if still running after ``timeout_s``."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, signal_number: signal.Signals) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal_number)
        except ProcessLookupError:
            return  # the whole group is gone already

    def group_alive(self) -> bool:
        """True while any process of the child's group (the child or what it started) still exists."""
        if self._process is None:
            return False
        self._process.poll()  # reap the leader so it does not linger as a zombie
        return bool(processes.group_members(self._process.pid))

    def log_tail(self, lines: int = LOG_TAIL_LINES_DEFAULT) -> list[str]:
        try:
            with self.spec.log_path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - LOG_TAIL_BYTES_MAX))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]


def stop_children(children: Sequence[Child], *, timeout_s: float) -> list[str]:
    """SIGTERM every child's group, wait up to ``timeout_s`` for all of them, SIGKILL what is left.

    Returns the names of the children that had to be killed. Children are signalled together and waited for
    together, so the total wait is bounded by ``timeout_s``, not by its multiple.
    """
    for child in children:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(child.group_alive() for child in children) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
    killed = [child.name for child in children if child.group_alive()]
    for child in children:
        if child.group_alive():
            child.signal_group(signal.SIGKILL)
    for child in children:
        child.wait(timeout_s)
    return killed
