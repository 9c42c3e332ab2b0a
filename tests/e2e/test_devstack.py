"""The whole suite as ``make run`` starts it, on the embedded default (DATABASE_URL/REDIS_URL unset).

One runner is started for the module, in a temporary run dir and with a port offset so it can run beside a
developer's ``make run``. The tests check it from outside, as a person would: health, reflection, the gateway, a
second runner refused, and finally Ctrl-C stopping everything it started. The tests run in file order; the last
one stops the suite (the fixture's teardown stops it too when that test is deselected).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from devstack import processes
from devstack.ports import is_port_free
from devstack.report import STATE_FILE
from devstack.topology import SERVICE_NAMES, Ports, ports_for
from tests.e2e.suite_process import (
    OUTPUT_TAIL_CHARS,
    free_port_offset,
    runner_env,
    stop,
    wait_until_ready,
)
from wallet.auth.v1 import auth_organizations_pb2, auth_service_pb2_grpc
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_service_pb2_grpc, ledger_transfers_pb2

pytestmark = pytest.mark.e2e

REPO_DIR = Path(__file__).resolve().parents[2]
SECOND_RUN_TIMEOUT_S = 30.0
RPC_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RunningSuite:
    process: subprocess.Popen[bytes]
    run_dir: Path
    ports: Ports
    output_path: Path
    env: dict[str, str]
    pids: dict[str, int]

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    base = tmp_path_factory.mktemp("devstack")
    run_dir = base / "run"
    port_offset = free_port_offset()
    env = runner_env(run_dir, port_offset)
    output_path = base / "devstack.out"
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, output_path)
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        yield RunningSuite(
            process=process,
            run_dir=run_dir,
            ports=ports_for(port_offset),
            output_path=output_path,
            env=env,
            pids={name: int(pid) for name, pid in state["pids"].items()},
        )
    finally:
        stop(process)


def test_every_service_reports_serving(suite: RunningSuite) -> None:
    for name in SERVICE_NAMES:
        with grpc.insecure_channel(suite.ports.grpc_address(name)) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S
            )
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name


def _reflected_services(address: str) -> list[str]:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = stub.ServerReflectionInfo(iter([request]), timeout=RPC_TIMEOUT_S)
        return [service.name for response in responses for service in response.list_services_response.service]


def test_reflection_lists_each_wallet_service(suite: RunningSuite) -> None:
    found: set[str] = set()
    for name in SERVICE_NAMES:
        listed = _reflected_services(suite.ports.grpc_address(name))
        own = [service for service in listed if re.fullmatch(rf"wallet\.{name}\.v1\.\w+Service", service)]
        assert own, f"{name} reflection lists no wallet.{name}.v1.*Service: {listed}"
        found.update(own)
    assert len(found) >= len(SERVICE_NAMES)


def test_gateway_healthz_is_ok(suite: RunningSuite) -> None:
    with httpx.Client(timeout=RPC_TIMEOUT_S, trust_env=False) as client:
        response = client.get(f"{suite.ports.gateway_url()}/healthz")
    assert response.status_code == 200


def _open_account(ledger: ledger_service_pb2_grpc.LedgerServiceStub, auth: Any, kind: int) -> str:
    account_id = str(uuid.uuid4())
    ledger.OpenAccount(
        ledger_accounts_pb2.OpenAccountRequest(account_id=account_id, kind=kind, currency="EUR"),  # type: ignore[arg-type]
        metadata=auth,
        timeout=RPC_TIMEOUT_S,
    )
    return account_id


def _transfer(
    ledger: ledger_service_pb2_grpc.LedgerServiceStub, auth: Any, debit: str, credit: str, amount_minor: int
) -> ledger_transfers_pb2.Transfer:
    response = ledger.CreateTransfer(
        ledger_transfers_pb2.CreateTransferRequest(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
        ),
        metadata=auth,
        timeout=RPC_TIMEOUT_S,
    )
    transfer: ledger_transfers_pb2.Transfer = response.transfer
    return transfer


def test_the_ledger_asks_risk_before_money_leaves_an_operating_account(suite: RunningSuite) -> None:
    # make run created the ledger's platform client; the ledger obtains a tenant token from auth and assesses.
    slug = f"e2e-{uuid.uuid4().hex[:10]}"
    with grpc.insecure_channel(suite.ports.grpc_address("auth")) as channel:
        signed_up = auth_service_pb2_grpc.AuthServiceStub(channel).SignUpOrganization(
            auth_organizations_pb2.SignUpOrganizationRequest(
                organization_id=str(uuid.uuid4()),
                slug=slug,
                display_name="E2E Org",
                owner_email=f"owner@{slug}.example",
                owner_display_name="Olive Owner",
                owner_password="correct horse battery staple 42",
            ),
            timeout=RPC_TIMEOUT_S,
        )
    auth = (("authorization", f"Bearer {signed_up.tokens.access_token}"),)
    with grpc.insecure_channel(suite.ports.grpc_address("ledger")) as channel:
        ledger = ledger_service_pb2_grpc.LedgerServiceStub(channel)
        suspense = _open_account(ledger, auth, ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE)
        operating = _open_account(ledger, auth, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING)
        other = _open_account(ledger, auth, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING)
        funding = _transfer(ledger, auth, suspense, operating, 10_000)
        assert funding.risk.check == ledger_transfers_pb2.RISK_CHECK_NOT_REQUIRED
        paid = _transfer(ledger, auth, operating, other, 1_000)
    assert paid.risk.check == ledger_transfers_pb2.RISK_CHECK_ASSESSED
    assert paid.risk.decision == ledger_transfers_pb2.RISK_DECISION_ALLOW


def test_second_run_on_the_same_run_dir_is_refused(suite: RunningSuite) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "devstack", "run"],
        cwd=REPO_DIR,
        env=suite.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SECOND_RUN_TIMEOUT_S,
        check=False,
    )
    assert second.returncode != 0
    message = second.stderr.strip().splitlines()
    assert len(message) == 1, second.stderr
    assert "already running" in message[0]
    assert str(suite.process.pid) in message[0]
    assert suite.process.poll() is None, "the second runner disturbed the first"


def _processes_with_run_dir(run_dir: Path) -> list[int]:
    """Live processes whose environment names our run dir: the runner and everything it started (services,
    migrations, whatever they spawned, the postmaster). Redis overwrites its environment with its process title,
    so it is checked by pid only."""
    marker = f"WALLET_RUN_DIR={run_dir}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if marker in environ.split(b"\0") and processes.is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_ctrl_c_stops_everything(suite: RunningSuite) -> None:
    assert {"postgres", "redis", *SERVICE_NAMES, "gateway"} <= suite.pids.keys()
    for name, pid in suite.pids.items():
        assert processes.is_alive(pid), f"{name} (pid {pid}) not running before the stop"

    exit_code = stop(suite.process)

    assert exit_code == 0, suite.output()[-OUTPUT_TAIL_CHARS:]
    still_alive = {name: pid for name, pid in suite.pids.items() if processes.is_alive(pid)}
    assert still_alive == {}
    groups_left = {name: processes.group_members(suite.pids[name]) for name in (*SERVICE_NAMES, "gateway")}
    assert all(members == [] for members in groups_left.values()), groups_left
    assert _processes_with_run_dir(suite.run_dir) == []
    assert not (suite.run_dir / STATE_FILE).exists()
    assert all(is_port_free(port) for port, _ in suite.ports.described())
