"""Facts about processes that are not our children (the postmaster, a leftover Redis), read from Linux ``/proc``.

A process that exited but was not reaped yet (a zombie) counts as gone: the machine's init may be slow to reap the
daemons Postgres leaves to it, and a zombie holds no port, socket or file.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC_DIR = Path("/proc")
POLL_INTERVAL_S = 0.05


def is_alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    if pid <= 0:
        return False
    try:
        stat = (PROC_DIR / str(pid) / "stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the command name, which is in parentheses and may itself contain spaces or ")".
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    """The argv of ``pid``, or [] when it is gone or hides it."""
    try:
        raw = (PROC_DIR / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def executable_name(pid: int) -> str:
    argv = command_line(pid)
    return Path(argv[0]).name if argv else ""


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` is gone; True if it went within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def send_signal(pid: int, signal_number: signal.Signals) -> None:
    """Signal ``pid`` if it still exists (it may exit between our check and the signal)."""
    try:
        os.kill(pid, signal_number)
    except ProcessLookupError:
        return


def terminate(pid: int, *, timeout_s: float, first_signal: signal.Signals = signal.SIGTERM) -> bool:
    """``first_signal``, wait up to ``timeout_s``, then SIGKILL. True if it stopped without SIGKILL."""
    send_signal(pid, first_signal)
    if wait_gone(pid, timeout_s):
        return True
    send_signal(pid, signal.SIGKILL)
    wait_gone(pid, timeout_s)
    return False


def group_members(process_group_id: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``process_group_id``.

    Read from /proc rather than probed with ``killpg(pgid, 0)``, which also succeeds for zombies that init has not
    reaped yet.
    """
    members: list[int] = []
    for entry in PROC_DIR.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except (FileNotFoundError, ProcessLookupError):
            continue
        # Fields after the ")" closing the command name: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == process_group_id:
            members.append(int(entry.name))
    return members
