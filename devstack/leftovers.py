"""Servers left running by a runner that was killed (SIGKILL, a crashed terminal) before it could stop them.

They still hold their ports, so the next ``make run`` would only say "port in use". When the next runner finds
the stale lock, it stops them: the ones recorded in the dead runner's ``devstack.json`` whose command line is still
ours (a pid may have been reused by an unrelated process since). The embedded Postgres and Redis are not handled
here: their own start functions adopt or stop what a dead run left on their data directories.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from devstack import processes
from devstack.report import read_state_pids
from devstack.topology import GATEWAY_NAME, SERVICE_NAMES

STOP_TIMEOUT_S = 10.0


def stop_leftovers(run_dir: Path) -> list[str]:
    """Stop the dead runner's servers that are still alive; returns their names."""
    stopped: list[str] = []
    for name, pid in read_state_pids(run_dir).items():
        if not _is_our_server(pid, name):
            continue
        _stop_group(pid)
        stopped.append(name)
    return stopped


def _is_our_server(pid: int, name: str) -> bool:
    if not processes.is_alive(pid):
        return False
    argv = processes.command_line(pid)
    if name == GATEWAY_NAME:
        module = "gateway"
    elif name in SERVICE_NAMES:
        module = f"services.{name}"
    else:
        return False
    return "-m" in argv and module in argv


def _stop_group(pid: int) -> None:
    """Our servers lead their own process group; signal the group so what they started goes too."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if processes.wait_gone(pid, STOP_TIMEOUT_S):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    processes.wait_gone(pid, STOP_TIMEOUT_S)
