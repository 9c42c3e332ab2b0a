"""One suite per run dir: a pid file held under an exclusive ``flock``.

The kernel drops the lock when its holder dies, however it dies, so a lock left by a killed run is never mistaken
for a live one: the pid in the file is only there to tell a person which process holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from devstack import processes
from devstack.errors import DevstackError

LOCK_FILE = "devstack.pid"


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DevstackError` naming the pid of the suite that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # os.open makes the descriptor non-inheritable, so no child (postgres, a service) keeps the lock alive.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder is not None else "another process"
            raise DevstackError(
                f"the wallet suite is already running from {self.path.parent} ({who}): "
                "use that one, stop it with Ctrl-C in its terminal"
                + (f" or `kill {holder}`" if holder is not None else "")
                + ", or start a second one with another WALLET_RUN_DIR and WALLET_PORT_OFFSET"
            ) from None
        previous = _read_pid(fd)
        if previous is not None and previous != os.getpid() and not processes.is_alive(previous):
            self.stale_pid = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink before unlocking: a process that opens the path after this sees a new file, never a lock we hold.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _read_pid(fd: int) -> int | None:
    raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(raw) if raw.isdigit() else None
