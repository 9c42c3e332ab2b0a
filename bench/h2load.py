"""h2load (Debian ``nghttp2-client``): the C load generator that drives gRPC unary calls (DESIGN.md §8).

A gRPC unary call over h2load is a POST whose body is the 5-byte gRPC prefix (compressed flag, big-endian length)
plus the serialized request, with ``content-type: application/grpc`` and ``te: trailers``. h2load does not read
``grpc-status`` trailers, so every 200 counts as a success here: a section must check afterwards (e.g. by counting
postings) that the calls it counted really succeeded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.latency import p50_p99_ms

PACKAGE = "nghttp2-client"
APT_TIMEOUT_S = 300.0
# h2load must stop by itself after warm-up + duration; this bounds the rest (connect, final flush).
EXIT_GRACE_S = 30.0
# One client thread: on this 2-core machine every core h2load takes is one the server under test does not get.
THREADS_DEFAULT = 1
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
ERROR_TAIL_LINES = 5

# h2load prints the duration in s, ms or us (a run whose every request errors at once finishes in microseconds).
_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"
)
_STATUS_2XX = re.compile(r"status codes: (\d+) 2xx")


@dataclass(frozen=True, slots=True)
class H2loadResult:
    requests_per_s: float
    succeeded: int
    failed: int
    errored: int
    status_2xx: int
    p50_ms: float | None
    p99_ms: float | None


def ensure_h2load() -> Path | None:
    """h2load's path, installing ``nghttp2-client`` with apt when missing and we are root; None (and a message
    saying why) when it cannot be had, so the sections that need it are skipped rather than failing the run."""
    found = shutil.which("h2load")
    if found is not None:
        return Path(found)
    if os.geteuid() != 0:
        print(f"h2load is missing and we are not root: install {PACKAGE} to run the gRPC sections")
        return None
    if shutil.which("apt-get") is None:
        print(f"h2load is missing and there is no apt-get here: install {PACKAGE} to run the gRPC sections")
        return None
    print(f"installing {PACKAGE} (h2load) with apt-get")
    # A fresh machine may have no package lists yet: install, and on failure update the lists and try once more.
    if not _apt_install() and not (_apt("update") and _apt_install()):
        print(f"could not install {PACKAGE}: the sections that need h2load are skipped")
        return None
    found = shutil.which("h2load")
    return Path(found) if found is not None else None


def _apt_install() -> bool:
    return _apt("install", "-y", "--no-install-recommends", PACKAGE)


def _apt(*arguments: str) -> bool:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        completed = subprocess.run(
            ["apt-get", "-q", *arguments], capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=environment
        )
    except subprocess.TimeoutExpired:
        print(f"apt-get {arguments[0]} did not finish within {APT_TIMEOUT_S:.0f} s")
        return False
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-ERROR_TAIL_LINES:])
        print(f"apt-get {arguments[0]} failed: {tail}")
    return completed.returncode == 0


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: flag 0 (not compressed), 4-byte big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def run_grpc_unary(
    h2load: Path,
    *,
    address: str,
    method: str,
    request: bytes,
    connections: int,
    streams_per_connection: int,
    duration_s: float,
    warm_up_s: float,
    threads: int = THREADS_DEFAULT,
    headers: Sequence[str] = (),
    requests_per_s_per_connection: int | None = None,
) -> H2loadResult:
    """Call ``method`` (``/pkg.Service/Method``) at ``address`` (``host:port``) with the serialized ``request``,
    ``connections * streams_per_connection`` calls in flight, for ``duration_s`` after ``warm_up_s``.

    ``requests_per_s_per_connection`` paces each connection (h2load ``--rps``) for latency-at-a-given-rate
    figures; without it every connection sends as fast as it gets answers."""
    if threads > connections:
        raise ValueError(
            f"h2load needs at least one connection per thread: {threads} threads, {connections} connections"
        )
    with tempfile.TemporaryDirectory(prefix="h2load-") as scratch:
        body_path = Path(scratch) / "request.bin"
        body_path.write_bytes(grpc_frame(request))
        log_path = Path(scratch) / "requests.log"
        argv = [
            str(h2load),
            f"http://{address}{method}",
            f"--data={body_path}",
            *(f"--header={header}" for header in (*GRPC_HEADERS, *headers)),
            f"--clients={connections}",
            f"--max-concurrent-streams={streams_per_connection}",
            f"--threads={threads}",
            f"--duration={duration_s:g}",
            f"--warm-up-time={warm_up_s:g}",
            f"--log-file={log_path}",
        ]
        if requests_per_s_per_connection is not None:
            argv.append(f"--rps={requests_per_s_per_connection}")
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=warm_up_s + duration_s + EXIT_GRACE_S, check=False
        )
        if completed.returncode != 0:
            tail = " | ".join((completed.stderr or completed.stdout).strip().splitlines()[-ERROR_TAIL_LINES:])
            raise BenchError(f"h2load failed with exit code {completed.returncode}: {tail}")
        p50_ms, p99_ms = p50_p99_ms(read_latency_log_us(log_path))
    return parse_summary(completed.stdout, p50_ms=p50_ms, p99_ms=p99_ms)


def parse_summary(output: str, *, p50_ms: float | None, p99_ms: float | None) -> H2loadResult:
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    status_2xx = _STATUS_2XX.search(output)
    if finished is None or requests is None or status_2xx is None:
        raise BenchError(f"cannot read h2load's summary: {output.strip()[-400:]!r}")
    return H2loadResult(
        requests_per_s=float(finished.group(3)),
        succeeded=int(requests.group(4)),
        failed=int(requests.group(5)),
        errored=int(requests.group(6)),
        status_2xx=int(status_2xx.group(1)),
        p50_ms=p50_ms,
        p99_ms=p99_ms,
    )


def read_latency_log_us(log_path: Path) -> list[float]:
    """``--log-file`` lines are ``start_time_us <TAB> status <TAB> duration_us``; failed requests (status -1) are
    left out."""
    samples: list[float] = []
    if not log_path.exists():
        return samples
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1] != "-1" and fields[2].isdigit():
            samples.append(float(fields[2]))
    return samples
