"""deploy/k8s: both overlays render (ours, and kubectl's when it is on the PATH, identically), every document is
valid against the pinned Kubernetes schemas, each overlay is what the issue asks, and the settings the manifests
give each process load with that process's own configuration loader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.dev_secrets import dev_secrets
from deploy.policy import pod_spec
from deploy.render import Document, render, resource_id
from deploy.schema import validate_all
from gateway.config import load_gateway_config
from services.auth.config import load_auth_settings
from services.contacts.config import load_contacts_config
from services.kit.config import DEFAULT_GRPC_PORTS, Env, load_service_config
from services.ledger.__main__ import load_risk_gate
from services.risk.config import load_risk_config

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("auth", "ledger", "contacts", "risk")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Document]]:
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


def find(documents: list[Document], kind: str, name: str) -> Document:
    [document] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def of_kind(documents: list[Document], kind: str) -> list[Document]:
    return [document for document in documents if document["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_document_is_schema_valid(rendered: dict[str, list[Document]], overlay: str) -> None:
    assert validate_all(rendered[overlay]) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on the PATH: nothing to compare with")
@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_kubectl_kustomize_renders_the_same(target: str) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    output = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    theirs = {resource_id(d): d for d in yaml.safe_load_all(output) if d}
    ours = {resource_id(d): d for d in render(K8S / target)}
    assert sorted(theirs) == sorted(ours)
    assert theirs == ours


def test_dev_runs_one_replica_with_in_cluster_postgres_and_redis(rendered: dict[str, list[Document]]) -> None:
    documents = rendered["dev"]
    for deployment in of_kind(documents, "Deployment"):
        assert deployment["spec"]["replicas"] == 1
    assert {hpa["spec"]["maxReplicas"] for hpa in of_kind(documents, "HorizontalPodAutoscaler")} == {1}
    postgres = find(documents, "StatefulSet", "postgres")
    assert postgres["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert find(documents, "StatefulSet", "redis")["spec"]["replicas"] == 1
    assert {d["metadata"]["namespace"] for d in documents if d["kind"] != "Namespace"} == {"wallet-dev"}
    images = {c["image"] for d in of_kind(documents, "Deployment") for c in pod_spec(d)["containers"]}
    assert images == {"wallet:dev"}


def test_prod_is_replicated_with_cnpg_backups_external_redis_and_otlp(rendered: dict[str, list[Document]]) -> None:
    documents = rendered["prod"]
    for deployment in of_kind(documents, "Deployment"):
        assert deployment["spec"]["replicas"] >= 2
        [container] = pod_spec(deployment)["containers"]
        assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]
    assert {hpa["spec"]["minReplicas"] for hpa in of_kind(documents, "HorizontalPodAutoscaler")} == {3}
    assert len(of_kind(documents, "PodDisruptionBudget")) == 5
    cluster = find(documents, "Cluster", "wallet-postgres")
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    assert {d["spec"]["name"] for d in of_kind(documents, "Database")} == {
        "wallet_ledger",
        "wallet_contacts",
        "wallet_risk",
    }
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "wallet_auth"
    assert of_kind(documents, "StatefulSet") == []  # Redis is external, Postgres is the operator's
    for config_map in of_kind(documents, "ConfigMap"):
        assert config_map["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    redis_egress = find(documents, "NetworkPolicy", "redis-clients")["spec"]["egress"]
    assert "ipBlock" in redis_egress[0]["to"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_agree_with_the_kit_and_the_services(rendered: dict[str, list[Document]], overlay: str) -> None:
    documents = rendered[overlay]
    for name, grpc_port in DEFAULT_GRPC_PORTS.items():
        ports = {port["name"]: port["port"] for port in find(documents, "Service", name)["spec"]["ports"]}
        assert ports["grpc"] == grpc_port
        assert ports["metrics"] == grpc_port + 1000


def _environment(documents: list[Document], name: str, tmp_path: Path) -> dict[str, str]:
    """What the process in the Deployment sees: its ConfigMap, its Secret references resolved to dev values, and
    each *_FILE path moved under tmp_path (the real mount point is not writable here)."""
    made = {d["metadata"]["name"]: d["stringData"] for d in dev_secrets("wallet-dev")}
    made["ledger-platform-client"] = {"client-id": "ledger-client", "client-secret": "bootstrap-printed"}
    [container] = pod_spec(find(documents, "Deployment", name))["containers"]
    environ: dict[str, str] = {}
    for source in container["envFrom"]:
        environ.update(find(documents, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container["env"]:
        reference: dict[str, Any] | None = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference is not None:
            if reference["name"] in made:
                environ[variable["name"]] = made[reference["name"]][reference["key"]]
        elif variable["name"].endswith("_FILE"):
            secret_name = {"auth": "auth-keys", "contacts": "contacts-keys", "ledger": "ledger-keys"}.get(
                name, "gateway-keys"
            )
            path = tmp_path / Path(variable["value"]).name
            path.write_text(made[secret_name][path.name], encoding="utf-8")
            environ[variable["name"]] = str(path)
        else:
            environ[variable["name"]] = variable["value"]
    return environ


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_loads_its_configuration_from_the_manifests(
    rendered: dict[str, list[Document]], overlay: str, tmp_path: Path
) -> None:
    documents = rendered[overlay]
    for name in SERVICES:
        environ = _environment(documents, name, tmp_path)
        config = load_service_config(name, environ)
        assert (config.grpc_host, config.grpc_port) == ("0.0.0.0", DEFAULT_GRPC_PORTS[name])
        assert config.auth_addr == "auth:50051"
        assert config.run_dir == Path("/tmp/wallet")
    assert load_auth_settings(_environment(documents, "auth", tmp_path)).master_key
    contacts = load_contacts_config(Path("/tmp/wallet"), _environment(documents, "contacts", tmp_path))
    assert contacts.kek_ring.keys
    assert load_risk_config(Env(_environment(documents, "risk", tmp_path))).ledger_addr == "ledger:50052"
    risk_gate = load_risk_gate(Env(_environment(documents, "ledger", tmp_path)))
    assert risk_gate is not None  # on, with the platform client from its Secret
    assert risk_gate.risk_addr == "risk:50054"
    gateway = load_gateway_config(_environment(documents, "gateway", tmp_path))
    assert (gateway.http_host, gateway.http_port, gateway.grpc_port) == ("0.0.0.0", 8080, 50050)
    assert gateway.upstreams == {
        "auth": "auth:50051",
        "ledger": "ledger:50052",
        "contacts": "contacts:50053",
        "risk": "risk:50054",
    }
    assert gateway.rate_limit_key
