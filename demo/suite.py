"""Where the demo finds the suite: the ``devstack.json`` a running ``make run`` wrote, or a suite it starts itself
(the devstack runner as a child process, stopped with Ctrl-C's SIGINT when the demo ends)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.report import READY_LINE_PREFIX, STATE_FILE

REPO_DIR = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0
POLL_INTERVAL_S = 0.2


class SuiteUnavailable(Exception):
    """The suite is neither running nor could be started; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class SuiteAddresses:
    run_dir: Path
    gateway_http: str
    grpc: Mapping[str, str]
    metrics: Mapping[str, str]
    redis_url: str
    postgres_url: str

    @classmethod
    def from_state(cls, run_dir: Path, state: Mapping[str, object]) -> SuiteAddresses:
        addresses = state["addresses"]
        metrics = state.get("metrics", {})
        if not isinstance(addresses, dict) or not isinstance(metrics, dict):
            raise SuiteUnavailable(f"{run_dir / STATE_FILE} has no address table")
        return cls(
            run_dir=run_dir,
            gateway_http=str(addresses["gateway_http"]),
            grpc={name: str(addresses[name]) for name in ("auth", "ledger", "contacts", "risk")},
            metrics={str(name): str(url) for name, url in metrics.items()},
            redis_url=str(state.get("redis_url", "")),
            postgres_url=str(state.get("postgres_url", "")),
        )


def read_running(run_dir: Path) -> SuiteAddresses | None:
    """The running suite's addresses, or None when no live runner wrote them."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(state, dict) or not state.get("ready"):
        return None
    runner_pid = state.get("runner_pid")
    if not isinstance(runner_pid, int) or not _alive(runner_pid):
        return None  # a file left behind by a runner that was killed
    return SuiteAddresses.from_state(run_dir, state)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def started_suite(run_dir: Path, log_path: Path) -> Iterator[SuiteAddresses]:
    """Starts ``python -m devstack run`` with ``run_dir`` and stops it (SIGINT, as Ctrl-C) on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["WALLET_RUN_DIR"] = str(run_dir)
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            text = log_path.read_text(encoding="utf-8", errors="replace")
            if READY_LINE_PREFIX in text:
                break
            if process.poll() is not None:
                raise SuiteUnavailable(f"the suite exited with {process.returncode} while starting; see {log_path}")
            if time.monotonic() > deadline:
                raise SuiteUnavailable(f"the suite was not ready within {READY_TIMEOUT_S:.0f} s; see {log_path}")
            time.sleep(POLL_INTERVAL_S)
        running = read_running(run_dir)
        if running is None:
            raise SuiteUnavailable(f"the suite said it was ready but wrote no {run_dir / STATE_FILE}")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
