"""Starting and stopping the whole suite (``python -m devstack run``) from an end-to-end test: a free port offset,
the runner's environment, waiting for its ready line, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devstack.ports import is_port_free
from devstack.report import READY_LINE_PREFIX
from devstack.topology import ports_for

# Generous: on a loaded 2-core machine migrations and platform-client bootstrap alone took 40 s.
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 40.0
POLL_INTERVAL_S = 0.1
# Offsets to try, away from the developer's default ports (offset 0) and from common ones.
PORT_OFFSET_CANDIDATES = range(7_000, 14_001, 500)
OUTPUT_TAIL_CHARS = 4_000


def free_port_offset() -> int:
    for offset in PORT_OFFSET_CANDIDATES:
        if all(is_port_free(port) for port, _ in ports_for(offset).described()):
            return offset
    pytest.fail(f"no port offset in {PORT_OFFSET_CANDIDATES} has all the suite's ports free")


def runner_env(run_dir: Path, port_offset: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    env["WALLET_RUN_DIR"] = str(run_dir)
    env["WALLET_PORT_OFFSET"] = str(port_offset)
    # These tests check the wiring, not speed: a cold risk on a busy machine may miss the 50 ms default deadline.
    env["RISK_GATE_DEADLINE_MS"] = "5000"
    return env


def wait_until_ready(process: subprocess.Popen[bytes], output_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        output = output_path.read_text(encoding="utf-8", errors="replace")
        if READY_LINE_PREFIX in output:
            return
        if process.poll() is not None:
            pytest.fail(f"devstack exited with {process.returncode} before ready:\n{output[-OUTPUT_TAIL_CHARS:]}")
        time.sleep(POLL_INTERVAL_S)
    pytest.fail(f"devstack not ready within {READY_TIMEOUT_S:.0f} s:\n{output[-OUTPUT_TAIL_CHARS:]}")


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """SIGINT (Ctrl-C) and wait; the exit code, or None if it had to be killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None
