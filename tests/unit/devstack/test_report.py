import io
import json
import os
from pathlib import Path

from rich.console import Console

from devstack.report import (
    READY_LINE_PREFIX,
    STATE_FILE,
    SuiteState,
    print_ready,
    read_state_pids,
    remove_state,
    write_state,
)
from devstack.topology import SERVICE_NAMES, ports_for


def _state(run_dir: Path, *, ready: bool = True) -> SuiteState:
    return SuiteState(
        run_dir=run_dir,
        ports=ports_for(100),
        postgres_url="postgresql://wallet:hunter2hunter2@127.0.0.1:5432/postgres",
        redis_url="redis://:redispass99@127.0.0.1:6379/0",
        pids={"auth": 11, "ledger": 12, "contacts": 13, "risk": 14, "gateway": 15, "postgres": 16},
        ready=ready,
    )


def test_state_file_lists_addresses_metrics_and_pids(tmp_path: Path) -> None:
    path = write_state(_state(tmp_path, ready=False))
    assert path == tmp_path / STATE_FILE
    recorded = json.loads(path.read_text())
    assert recorded["ready"] is False
    assert recorded["runner_pid"] == os.getpid()
    assert recorded["run_dir"] == str(tmp_path)
    assert recorded["addresses"] == {
        "auth": "127.0.0.1:50151",
        "ledger": "127.0.0.1:50152",
        "contacts": "127.0.0.1:50153",
        "risk": "127.0.0.1:50154",
        "gateway_http": "http://127.0.0.1:8180",
    }
    assert recorded["metrics"] == {
        name: f"http://127.0.0.1:{51151 + i}/metrics" for i, name in enumerate(SERVICE_NAMES)
    }
    assert recorded["pids"]["gateway"] == 15
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, then renamed


def test_pids_round_trip_and_remove_state(tmp_path: Path) -> None:
    write_state(_state(tmp_path))
    assert read_state_pids(tmp_path) == {
        "auth": 11,
        "ledger": 12,
        "contacts": 13,
        "risk": 14,
        "gateway": 15,
        "postgres": 16,
    }
    remove_state(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
    assert read_state_pids(tmp_path) == {}
    remove_state(tmp_path)  # already gone: fine


def test_unreadable_state_files_give_no_pids(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    for content in ["{not json", "[1, 2]", '{"pids": [1, 2]}', '{"pids": null}', ""]:
        path.write_text(content)
        assert read_state_pids(tmp_path) == {}, content


def test_only_integer_pids_are_read(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"pids": {"auth": 7, "ledger": "8", "risk": None, "gw": 9.5}}))
    assert read_state_pids(tmp_path) == {"auth": 7}


def test_the_ready_table_hides_passwords_and_ends_with_the_ready_line(tmp_path: Path) -> None:
    output = io.StringIO()
    console = Console(file=output, width=200, color_system=None)
    print_ready(console, _state(tmp_path), elapsed_s=3.14159, logs_dir=tmp_path / "logs")
    text = output.getvalue()
    assert "hunter2hunter2" not in text
    assert "redispass99" not in text
    assert "postgres: postgresql://wallet:***@127.0.0.1:5432/postgres" in text
    assert "redis:    redis://:***@127.0.0.1:6379/0" in text
    assert "127.0.0.1:50152 (gRPC)" in text
    assert "http://127.0.0.1:51154/metrics" in text
    assert "http://127.0.0.1:8180 (HTTP)" in text
    assert f"logs:     {tmp_path / 'logs'}" in text
    assert text.rstrip().splitlines()[-1] == f"{READY_LINE_PREFIX} in 3.1 s; press Ctrl-C to stop it"


def test_a_url_without_password_is_printed_as_is(tmp_path: Path) -> None:
    output = io.StringIO()
    state = SuiteState(
        run_dir=tmp_path,
        ports=ports_for(0),
        postgres_url="postgresql://embedded_postgres@/postgres?host=/x/y",
        redis_url="redis://127.0.0.1:6379/0",
        pids={},
        ready=True,
    )
    print_ready(Console(file=output, width=200, color_system=None), state, elapsed_s=0, logs_dir=tmp_path)
    assert "postgres: postgresql://embedded_postgres@/postgres?host=/x/y" in output.getvalue()
    assert "redis:    redis://127.0.0.1:6379/0" in output.getvalue()
