"""``make demo`` against the whole suite as ``make run`` starts it (embedded default, a port offset, its own run dir),
then the privacy scan of issue 12 over everything the suite wrote while the demo ran.

One runner is started for the module; the demo runs once (``python -m demo --run-dir``, exactly what ``make demo``
runs) and the tests read its output and the suite's state afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from demo.main import FINISHED_LINE
from demo.walkthrough import DEMO_PHONE_NUMBER
from devstack.report import STATE_FILE
from devstack.topology import ports_for
from tests.e2e.suite_process import free_port_offset, runner_env, stop, wait_until_ready
from tests.support.privacy_scan import (
    Finding,
    database_dumps,
    files_under,
    metrics_scrapes,
    phone_formats,
    redis_contents,
    redis_key_count,
    search,
)

pytestmark = pytest.mark.e2e

REPO_DIR = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 120.0
# The narration's key lines, one per step (the ✔ lines), in order.
KEY_LINES = (
    "tenant signed up:",
    "MFA enrolled; logged in with password + TOTP",
    "approver Abe invited, accepted, and logged in with MFA",
    "customers signed up: Paula (payer) and Quinn (payee)",
    "wallets opened: Paula EUR + JPY",
    "topped up Paula's EUR wallet: 2,000.00 EUR",
    "paid by phone: 12.50 EUR to +86 139****4653 (TRANSFER_STATUS_POSTED)",
    "exchanged through the FX liquidity accounts: JPY wallet holds 16,123 JPY",
    "transfer of 750.00 EUR held for review",
    "approved transfer posted: TRANSFER_STATUS_POSTED",
    "statement page: 4 lines",
    "access log: 1 entry(ies) for Quinn's contact",
    FINISHED_LINE,
)


@dataclass(frozen=True)
class DemoRun:
    run_dir: Path
    port_offset: int
    returncode: int
    output: str
    state: dict[str, Any]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    base = tmp_path_factory.mktemp("demo")
    run_dir = base / "run"
    port_offset = free_port_offset()
    env = runner_env(run_dir, port_offset)
    # Every log path the flows touch writes a line, for the privacy scan to search.
    env["LOG_LEVEL"] = "DEBUG"
    output_path = base / "devstack.out"
    with output_path.open("wb") as output:
        suite = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(suite, output_path)
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        demo = subprocess.run(
            [sys.executable, "-m", "demo", "--run-dir", str(run_dir)],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
            check=False,
        )
        yield DemoRun(run_dir, port_offset, demo.returncode, demo.stdout + demo.stderr, state)
    finally:
        stop(suite)


def copied_rows(dump: bytes, table: str) -> int:
    """How many rows a plain-format pg_dump copies into ``public.<table>``."""
    lines = dump.split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"COPY public.{table} (".encode()))
    return lines[start + 1 :].index(b"\\.")


def test_the_demo_walks_every_step_and_exits_0(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, demo_run.output[-4_000:]
    position = 0
    for line in KEY_LINES:
        found = demo_run.output.find(line, position)
        assert found >= 0, f"{line!r} missing (or out of order) in:\n{demo_run.output[-4_000:]}"
        position = found
    # It used the running suite rather than starting its own.
    assert "starting one for the demo" not in demo_run.output


def test_the_demo_prints_the_payments_trace_across_the_services(demo_run: DemoRun) -> None:
    assert "/wallet.ledger.v1.LedgerService/PayByPhone" in demo_run.output
    assert "/wallet.contacts.v1.ContactsService/ResolvePhone" in demo_run.output
    trace_line = next(line for line in demo_run.output.splitlines() if line.startswith("✔ trace "))
    for service in ("wallet-gateway", "wallet-ledger", "wallet-contacts", "wallet-risk"):
        assert service in trace_line


def test_the_demo_shows_the_phone_number_only_masked(demo_run: DemoRun) -> None:
    assert "+86 139****4653" in demo_run.output
    assert search("the demo's output", demo_run.output.encode(), DEMO_PHONE_NUMBER) == []


def test_the_scan_finds_the_number_in_any_format_it_is_written_in() -> None:
    """The search below can fail: each format, and an unusual grouping, is found inside other bytes."""
    for text in [*phone_formats(DEMO_PHONE_NUMBER), "1390 721 4653", "(139) 0721-4653"]:
        assert search("sample", b'{"msg": "x' + text.encode() + b'y"}', DEMO_PHONE_NUMBER), text
    assert search("sample", b"+86 139****4653 13907214650", DEMO_PHONE_NUMBER) == []


def test_nothing_the_suite_wrote_or_holds_contains_the_phone_number(demo_run: DemoRun) -> None:
    """Issue 12, "secrets and personal data", for the phone number the demo stored, resolved and paid: logs, span
    files, a scrape of every /metrics endpoint, every Redis key and value, a pg_dump of every service database."""
    assert demo_run.returncode == 0, demo_run.output[-4_000:]
    state = demo_run.state
    ports = ports_for(demo_run.port_offset)
    metrics_urls = [*state["metrics"].values(), f"http://127.0.0.1:{ports.gateway_grpc + 1_000}/metrics"]
    socket_dir = state["postgres_url"].rpartition("host=")[2]
    sources: dict[str, list[tuple[str, bytes]]] = {
        "logs": list(files_under(demo_run.run_dir / "logs")),
        "spans": list(files_under(demo_run.run_dir / "traces")),
        "metrics": list(metrics_scrapes(metrics_urls)),
        "redis": list(redis_contents(state["redis_url"])),
        "postgres": list(database_dumps(socket_dir)),
    }
    # Each source really holds what the demo did (an empty haystack would pass for the wrong reason).
    trace_id = next(line for line in demo_run.output.splitlines() if line.startswith("✔ trace ")).split()[2]
    trace_id = trace_id.rstrip(":")
    assert any(trace_id.encode() in data for _, data in sources["spans"])
    assert any(b"wallet_ledger_pay_by_phone" in data or b"PayByPhone" in data for _, data in sources["metrics"])
    assert len(sources["redis"]) == redis_key_count(state["redis_url"]) > 0
    dumps = dict(sources["postgres"])
    assert copied_rows(dumps["pg_dump wallet_contacts"], "contact") >= 1
    assert copied_rows(dumps["pg_dump wallet_ledger"], "transfers") >= 1
    assert sources["logs"]
    findings: list[Finding] = [
        finding
        for items in sources.values()
        for where, data in items
        for finding in search(where, data, DEMO_PHONE_NUMBER)
    ]
    assert findings == []
