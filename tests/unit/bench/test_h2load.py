import json
import stat
import sys
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.h2load import GRPC_HEADERS, H2loadResult, grpc_frame, parse_summary, read_latency_log_us, run_grpc_unary

# Verbatim from h2load (nghttp2 1.52.0) driving grpc.health.v1.Health/Check on a local gRPC server:
# --clients=2 --max-concurrent-streams=4 --duration=2 --warm-up-time=1.
OUTPUT_OK = """\
starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Application protocol: h2c
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 3.00s, 8930.50 req/s, 544.94KB/s
requests: 17861 total, 17861 started, 17861 done, 17861 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 17861 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.06MB (1116029) total, 79.90KB (81822) headers (space savings 96.29%), 186.10KB (190568) data
                     min         max         mean         sd        +/- sd
time for request:      300us     12.26ms       887us       519us    94.92%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :    4460.86     4469.40     4465.13        6.04   100.00%
"""

# Verbatim from h2load 1.52.0 when the server had gone: every request errors at once, so the run "finishes" in
# microseconds.
OUTPUT_ALL_ERRORED = """\
starting benchmark...
spawning thread #0: 2 total client(s). 2000000 total requests
Application protocol: h2c
finished in 245us, 0.00 req/s, 0B/s
requests: 2000000 total, 0 started, 0 done, 0 succeeded, 2000000 failed, 2000000 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 0B (0) total, 0B (0) headers (space savings 0.00%), 0B (0) data
                     min         max         mean         sd        +/- sd
time for request:        0us         0us         0us         0us     0.00%
time for connect:        0us         0us         0us         0us     0.00%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :       0.00        0.00        0.00        0.00   100.00%
"""


def test_grpc_frame_is_flag_then_big_endian_length_then_message() -> None:
    assert grpc_frame(b"") == b"\x00\x00\x00\x00\x00"
    assert grpc_frame(b"\x0a\x03abc") == b"\x00\x00\x00\x00\x05\x0a\x03abc"
    big = bytes(range(256)) * 2 + b"tail"  # 516 bytes = 0x0204
    framed = grpc_frame(big)
    assert framed[:5] == b"\x00\x00\x00\x02\x04"
    assert framed[5:] == big
    assert int.from_bytes(grpc_frame(b"x" * 70_000)[1:5], "big") == 70_000


def test_summary_of_a_clean_run() -> None:
    assert parse_summary(OUTPUT_OK, p50_ms=0.9, p99_ms=2.5) == H2loadResult(
        requests_per_s=8930.50, succeeded=17861, failed=0, errored=0, status_2xx=17861, p50_ms=0.9, p99_ms=2.5
    )


def test_summary_of_a_run_where_everything_errored() -> None:
    result = parse_summary(OUTPUT_ALL_ERRORED, p50_ms=None, p99_ms=None)
    assert (result.requests_per_s, result.succeeded, result.failed, result.errored, result.status_2xx) == (
        0.0,
        0,
        2000000,
        2000000,
        0,
    )


@pytest.mark.parametrize("duration", ["1.50ms", "2.01s", "245us", "12s"])
def test_every_duration_unit_h2load_prints_is_read(duration: str) -> None:
    output = OUTPUT_OK.replace("finished in 3.00s", f"finished in {duration}")
    assert parse_summary(output, p50_ms=None, p99_ms=None).requests_per_s == 8930.50


@pytest.mark.parametrize(
    "output",
    [
        "",
        "invalid URI: nope\n",
        OUTPUT_OK.replace("status codes:", "statuses:"),
        OUTPUT_OK.replace(" req/s, 544", " rps, 544"),
        OUTPUT_OK.replace("0 timeout", "0 timedout"),
    ],
)
def test_an_unreadable_summary_is_a_bench_error(output: str) -> None:
    with pytest.raises(BenchError, match="cannot read h2load's summary"):
        parse_summary(output, p50_ms=None, p99_ms=None)


def test_latency_log_keeps_successful_requests_only(tmp_path: Path) -> None:
    log = tmp_path / "requests.log"
    # start_us <TAB> status <TAB> duration_us, as --log-file writes it; -1 marks a failed stream.
    log.write_text(
        "1795434495414132\t200\t1227\n"
        "1795434495414587\t200\t1145\n"
        "1795434495414600\t-1\t50\n"
        "1795434495414700\t503\t900\n"
        "1795434495414800 200 777\n"
        "\n"
    )
    assert read_latency_log_us(log) == [1227.0, 1145.0, 900.0]


def test_a_missing_latency_log_means_no_samples(tmp_path: Path) -> None:
    assert read_latency_log_us(tmp_path / "requests.log") == []


def test_more_threads_than_connections_is_refused_before_running(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one connection per thread: 4 threads, 2 connections"):
        run_grpc_unary(
            tmp_path / "no-such-h2load",
            address="127.0.0.1:1",
            method="/x.S/M",
            request=b"",
            connections=2,
            streams_per_connection=1,
            duration_s=1,
            warm_up_s=0,
            threads=4,
        )


def _fake_h2load(tmp_path: Path, *, stdout: str, exit_code: int = 0, stderr: str = "") -> tuple[Path, Path]:
    """An executable that records its argv and request body, writes a latency log and prints ``stdout``."""
    record = tmp_path / "call.json"
    script = tmp_path / "h2load"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "options = dict(a[2:].split('=', 1) for a in sys.argv[2:] if '=' in a)\n"
        "body = open(options['data'], 'rb').read().hex()\n"
        "headers = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--header=')]\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'body': body, 'headers': headers}}))\n"
        "with open(options['log-file'], 'w') as log:\n"
        "    for number in range(1, 101):\n"
        "        log.write(f'17954344954{number:05d}\\t200\\t{number * 100}\\n')\n"
        "    log.write('1795434495499999\\t-1\\t999999999\\n')\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


def test_run_grpc_unary_sends_a_grpc_request_and_reads_the_results(tmp_path: Path) -> None:
    h2load, record = _fake_h2load(tmp_path, stdout=OUTPUT_OK)
    result = run_grpc_unary(
        h2load,
        address="127.0.0.1:50152",
        method="/wallet.ledger.v1.LedgerService/Transfer",
        request=b"\x0a\x02id",
        connections=4,
        streams_per_connection=16,
        duration_s=10,
        warm_up_s=2.5,
        headers=("authorization: Bearer t0ken",),
        requests_per_s_per_connection=250,
    )
    assert result.requests_per_s == 8930.50
    assert (result.p50_ms, result.p99_ms) == (5.0, 9.9)  # the failed stream's time is left out
    called = json.loads(record.read_text())
    assert called["argv"][0] == "http://127.0.0.1:50152/wallet.ledger.v1.LedgerService/Transfer"
    assert bytes.fromhex(called["body"]) == b"\x00\x00\x00\x00\x04\x0a\x02id"
    assert called["headers"] == [*GRPC_HEADERS, "authorization: Bearer t0ken"]
    for option in [
        "--clients=4",
        "--max-concurrent-streams=16",
        "--threads=1",
        "--duration=10",
        "--warm-up-time=2.5",
    ]:
        assert option in called["argv"]
    assert "--rps=250" in called["argv"]


def test_without_a_rate_every_connection_sends_as_fast_as_it_can(tmp_path: Path) -> None:
    h2load, record = _fake_h2load(tmp_path, stdout=OUTPUT_OK)
    run_grpc_unary(
        h2load, address="127.0.0.1:1", method="/x.S/M", request=b"", connections=1, streams_per_connection=1,
        duration_s=1, warm_up_s=0,
    )  # fmt: skip
    assert not any(argument.startswith("--rps") for argument in json.loads(record.read_text())["argv"])


def test_a_failing_h2load_is_a_bench_error_with_its_output(tmp_path: Path) -> None:
    h2load, _ = _fake_h2load(tmp_path, stdout="", stderr="invalid URI: http://x\n", exit_code=1)
    with pytest.raises(BenchError, match=r"^h2load failed with exit code 1: invalid URI: http://x$"):
        run_grpc_unary(
            h2load, address="x", method="/x.S/M", request=b"", connections=1, streams_per_connection=1,
            duration_s=1, warm_up_s=0,
        )  # fmt: skip
