"""deploy/observability: the Grafana dashboard and the Prometheus alert rules are well-formed, and every metric they
reference exists in a scrape of the running services' /metrics endpoints (auth, ledger, contacts, risk and the
gateway, in-process on port 0, as in tests/integration/cli). Histogram ``_bucket``/``_sum``/``_count`` and counter
``_total`` names are derived from the scraped families' types.

The in-process servers share one Prometheus registry, so the scrape is of this process's metrics as the real
endpoints serve them; every metric module is imported by the service or kit code the servers run.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import load_gateway_config
from gateway.runtime import build_runtime
from services.kit.metrics import start_metrics_server
from services.ledger.jobs import check_invariants_round, expire_holds_round
from tests.integration.cli.conftest import Suite, suite
from tests.integration.gateway.conftest import HttpServer, gateway_environ

pytestmark = pytest.mark.integration

__all__ = ["suite"]  # the fixture, imported so this module can use it

OBSERVABILITY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "observability"
ALERTS = OBSERVABILITY_DIR / "alerts.yaml"
DASHBOARD = OBSERVABILITY_DIR / "grafana-dashboard.json"
METRIC_NAME = re.compile(r"\b(wallet_[a-z0-9_]+)\b")
DURATION = re.compile(r"^\d+[smhd]$")
SEVERITIES = frozenset({"page", "ticket"})
SUFFIXES_BY_TYPE = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "unknown": ("",),
}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["definition"])
    return exprs


def balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def test_alert_rules_are_well_formed() -> None:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert [group["name"] for group in document["groups"]]
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert balanced(rule["expr"]), rule["alert"]
    covered = " ".join(rule["expr"] for rule in rules)
    for needed in ("wallet_grpc_server_handled_total", "wallet_grpc_server_handling_seconds_bucket"):
        assert needed in covered  # availability and latency SLO burn
    for needed in ("wallet_ledger_invariant_violations", "wallet_outbox_lag_seconds"):
        assert needed in covered


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert balanced(target["expr"]), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"


def scraped_names(exposition: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SUFFIXES_BY_TYPE[family.type])
    return names


@pytest.fixture(scope="module")
async def gateway_metrics_port(suite: Suite, redis_server_url: str) -> AsyncIterator[int]:
    """The gateway as ``python -m gateway`` runs it: its app serving HTTP, and its metrics endpoint."""
    environ = gateway_environ(suite.auth.address, redis_server_url)
    environ["LEDGER_ADDR"] = f"127.0.0.1:{suite.ledger.port}"
    runtime = build_runtime(load_gateway_config(environ))
    http = HttpServer(create_app(runtime))
    metrics = start_metrics_server("127.0.0.1", 0)
    url = await http.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            assert (await client.get("/healthz")).status_code == 200
        yield metrics.port
    finally:
        metrics.stop()
        await http.stop()
        await runtime.close()


async def test_every_metric_referenced_exists_in_a_scrape(suite: Suite, gateway_metrics_port: int) -> None:
    # One round of the ledger's background jobs, as the ledger process runs them every few seconds.
    await check_invariants_round(suite.ledger_app)
    await expire_holds_round(suite.ledger_app)
    ports = [suite.auth.server.metrics_port, suite.ledger.metrics_port]
    ports += [suite.contacts.metrics_port, suite.risk.metrics_port, gateway_metrics_port]
    scraped: set[str] = set()
    async with httpx.AsyncClient(timeout=10.0) as client:
        for port in ports:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200
            scraped |= scraped_names(response.text)

    referenced = {name for expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    referenced |= {name for rule in alert_rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert len(referenced) >= 20  # the files reference real metrics; an empty match would pass vacuously
    missing = sorted(referenced - scraped)
    assert not missing, f"referenced but not exported: {missing}"


def test_scraped_names_follow_the_family_types() -> None:
    exposition = (
        "# HELP a_total x\n# TYPE a_total counter\na_total 1.0\n"
        '# HELP b x\n# TYPE b histogram\nb_bucket{le="+Inf"} 1.0\nb_count 1.0\nb_sum 0.1\n'
        "# HELP c x\n# TYPE c gauge\n"
    )
    assert scraped_names(exposition) == {"a_total", "b_bucket", "b_sum", "b_count", "c"}
