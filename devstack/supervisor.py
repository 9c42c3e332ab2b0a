"""Starts the suite's child processes, waits (bounded) until they are ready, watches them, and stops them in order.

Children are started in tiers (migrations, then the services and the gateway) and stopped tier by tier, last
started first, so the gateway stops before the services it calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from devstack.children import Child, ChildSpec, stop_children
from devstack.errors import DevstackError
from devstack.readiness import Probe

POLL_INTERVAL_S = 0.2
FAILURE_LOG_LINES = 20


class Supervisor:
    def __init__(self, *, start_guard: Callable[[], AbstractContextManager[None]] = nullcontext) -> None:
        """``start_guard`` wraps every start: the runner defers stop signals there, so a child is never forked
        without being recorded for shutdown."""
        self._tiers: list[list[Child]] = []
        self._start_guard = start_guard

    def start_tier(self, specs: Sequence[ChildSpec]) -> list[Child]:
        tier = [Child(spec) for spec in specs]
        # Registered before starting, so a failure mid-way still stops the ones already started.
        self._tiers.append(tier)
        with self._start_guard():
            for child in tier:
                child.start()
        return tier

    def run_to_completion(self, specs: Sequence[ChildSpec], *, timeout_s: float) -> None:
        """Run ``specs`` in parallel; raise if one fails or they do not all finish within ``timeout_s``."""
        tier = self.start_tier(specs)
        deadline = time.monotonic() + timeout_s
        pending = list(tier)
        while pending:
            for child in list(pending):
                code = child.exit_code()
                if code is None:
                    continue
                if code != 0:
                    raise child_failure(child, f"{child.name} failed with exit code {code}")
                pending.remove(child)
            if pending and time.monotonic() >= deadline:
                raise child_failure(pending[0], f"{pending[0].name} did not finish within {timeout_s:.0f} s")
            time.sleep(POLL_INTERVAL_S)

    def wait_ready(self, probes: Sequence[tuple[Child, Probe]], *, timeout_s: float) -> None:
        """Poll every probe until all are ready; raise as soon as a child dies, or when ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        pending = list(probes)
        while pending:
            for child, probe in list(pending):
                code = child.exit_code()
                if code is not None:
                    raise child_failure(child, f"{child.name} exited with code {code} before it was ready")
                if probe.ready():
                    pending.remove((child, probe))
            if pending and time.monotonic() >= deadline:
                child = pending[0][0]
                waiting = ", ".join(waiting_child.name for waiting_child, _ in pending)
                raise child_failure(child, f"not ready after {timeout_s:.0f} s: {waiting}")
            if pending:
                time.sleep(POLL_INTERVAL_S)

    def first_exited(self) -> Child | None:
        """A child of the running suite that has exited (the suite is broken), if any."""
        for tier in self._tiers:
            for child in tier:
                if child.exit_code() is not None and not child.spec.one_shot:
                    return child
        return None

    def stop_all(self, *, timeout_s: float) -> list[str]:
        """Stop every tier, last started first; returns the names of children that needed SIGKILL."""
        killed: list[str] = []
        while self._tiers:
            killed.extend(stop_children(self._tiers.pop(), timeout_s=timeout_s))
        return killed


def child_failure(child: Child, message: str) -> DevstackError:
    """``message`` as the one-line reason, with the tail of the child's log as details."""
    tail = child.log_tail(FAILURE_LOG_LINES)
    header = f"--- last lines of {child.spec.log_path} ---"
    return DevstackError(f"{message}; see its log below", details=(header, *tail))
