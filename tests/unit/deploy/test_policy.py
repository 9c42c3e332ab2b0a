"""deploy/policy.py: the rendered overlays meet every rule, and breaking any one rule is caught.

Each negative test takes the real rendered dev or prod overlay, breaks one thing the way a careless patch would,
and expects the violation that names it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deploy.policy import check, drain_s, pod_spec
from deploy.render import Document, render

OVERLAYS = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "overlays"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Document]]:
    return {name: render(OVERLAYS / name) for name in ("dev", "prod")}


def find(documents: list[Document], kind: str, name: str) -> Document:
    [document] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def container(documents: list[Document], kind: str, name: str) -> dict[str, Any]:
    first: dict[str, Any] = pod_spec(find(documents, kind, name))["containers"][0]
    return first


def broken(documents: list[Document], change: Callable[[list[Document]], None]) -> list[str]:
    copied = copy.deepcopy(documents)
    change(copied)
    return check(copied)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_overlays_meet_every_rule(rendered: dict[str, list[Document]], overlay: str) -> None:
    assert check(rendered[overlay]) == []


def test_a_pod_without_run_as_non_root_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        del pod_spec(find(documents, "Deployment", "ledger"))["securityContext"]["runAsNonRoot"]

    assert "Deployment/ledger: pod securityContext.runAsNonRoot must be true" in broken(rendered["prod"], change)


def test_a_root_container_a_writable_root_and_kept_capabilities_fail(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        security = container(documents, "Job", "risk-migrate")["securityContext"]
        security.update(runAsUser=0, readOnlyRootFilesystem=False, capabilities={"add": ["NET_ADMIN"]})

    problems = broken(rendered["dev"], change)
    for expected in ("must not run as root", "readOnlyRootFilesystem must be true", "must drop ALL", "add no capab"):
        assert any(
            problem.startswith("Job/risk-migrate: container migrate") and expected in problem for problem in problems
        )


def test_a_deployment_without_probes_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            del container(documents, "Deployment", "contacts")[probe]

    problems = broken(rendered["dev"], change)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert f"Deployment/contacts: container contacts: needs a {probe}" in problems


def test_grpc_liveness_on_the_readiness_name_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        container(documents, "Deployment", "risk")["livenessProbe"]["grpc"].pop("service")

    assert any("gRPC liveness must check the 'liveness'" in problem for problem in broken(rendered["prod"], change))


def test_a_secret_value_in_a_config_map_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        data = find(documents, "ConfigMap", "contacts-config")["data"]
        data["CONTACTS_KEK"] = "c2VjcmV0"
        data["CONTACTS_KEK_V2"] = "c2VjcmV0"
        data["AUTH_ACCESS_TOKEN_TTL_S"] = "900"  # a duration: no secret
        data["CONTACTS_KEK_FILE"] = "/var/run/secrets/wallet/kek"  # a path: no secret
        data["ANALYTICS"] = "postgresql://wallet:hunter2@postgres:5432/wallet_contacts"

    problems = broken(rendered["dev"], change)
    assert "ConfigMap/contacts-config: CONTACTS_KEK looks like a secret; use a Secret" in problems
    assert "ConfigMap/contacts-config: CONTACTS_KEK_V2 looks like a secret; use a Secret" in problems
    assert "ConfigMap/contacts-config: ANALYTICS holds a credential; use a Secret" in problems
    assert not [problem for problem in problems if "TTL_S" in problem or "_FILE" in problem]


def test_secret_objects_and_literal_secret_env_fail(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        documents.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oops"}, "stringData": {"k": "v"}}
        )
        container(documents, "Deployment", "gateway")["env"].append({"name": "GATEWAY_RATE_LIMIT_KEY", "value": "k"})

    problems = broken(rendered["prod"], change)
    assert "Secret/oops: Secrets come from the secret manager, never from the repository" in problems
    assert any(
        problem.startswith("Deployment/gateway: env GATEWAY_RATE_LIMIT_KEY looks like") for problem in problems
    )


def test_a_missing_network_policy_edge_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        egress = find(documents, "NetworkPolicy", "ledger")["spec"]["egress"]
        egress[:] = [rule for rule in egress if rule["ports"][0]["port"] != 50054]

    assert any(
        problem.startswith("ledger -> risk: Deployment/ledger cannot reach Deployment/risk:50054")
        for problem in broken(rendered["prod"], change)
    )


def test_a_missing_ingress_side_and_a_missing_datastore_edge_fail(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        find(documents, "NetworkPolicy", "auth")["spec"]["ingress"][0]["from"].pop()  # the last caller: risk
        find(documents, "NetworkPolicy", "postgres")["spec"]["ingress"][0]["from"][0]["podSelector"][
            "matchExpressions"
        ][0]["values"].remove("contacts")

    problems = broken(rendered["dev"], change)
    assert any(problem.startswith("risk -> auth:") for problem in problems)
    assert any(problem.startswith("contacts -> postgres: Deployment/contacts cannot") for problem in problems)
    assert any(problem.startswith("contacts -> postgres: Job/contacts-migrate cannot") for problem in problems)


def test_an_edge_the_code_never_needs_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        find(documents, "NetworkPolicy", "contacts")["spec"]["egress"].append(
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ledger"}}}],
                "ports": [{"port": 50052}],
            }
        )
        find(documents, "NetworkPolicy", "ledger")["spec"]["ingress"][0]["from"].append(
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "contacts"}}}
        )

    assert any(
        problem.startswith("contacts -> ledger:") and "never needs" in problem
        for problem in broken(rendered["prod"], change)
    )


def test_no_default_deny_or_an_open_rule_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        documents.remove(find(documents, "NetworkPolicy", "default-deny"))
        find(documents, "NetworkPolicy", "gateway")["spec"]["ingress"][0].pop("from")

    problems = broken(rendered["prod"], change)
    assert "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)" in problems
    assert "NetworkPolicy/gateway: a ingress rule allows any peer" in problems


def test_missing_dns_egress_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        documents.remove(find(documents, "NetworkPolicy", "allow-dns"))

    assert "Deployment/auth: DNS (UDP 53) to kube-dns is not allowed" in broken(rendered["dev"], change)


def test_rollout_rules(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        ledger = find(documents, "Deployment", "ledger")
        ledger["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1
        pod_spec(ledger)["terminationGracePeriodSeconds"] = 15
        del pod_spec(ledger)["topologySpreadConstraints"]
        documents.remove(find(documents, "PodDisruptionBudget", "ledger"))
        documents.remove(find(documents, "HorizontalPodAutoscaler", "ledger"))

    problems = broken(rendered["prod"], change)
    for expected in (
        "rolling updates need maxUnavailable 0",
        "terminationGracePeriodSeconds 15 must exceed the drain of ledger",
        "needs topologySpreadConstraints selecting its own pods",
        "needs a PodDisruptionBudget",
        "needs an autoscaling/v2 HorizontalPodAutoscaler",
    ):
        assert f"Deployment/ledger: {expected}" in problems


def test_drain_adds_grace_delay_and_pre_stop(rendered: dict[str, list[Document]]) -> None:
    documents = rendered["prod"]
    ledger = find(documents, "Deployment", "ledger")
    gateway = find(documents, "Deployment", "gateway")
    assert drain_s(documents, ledger, container(documents, "Deployment", "ledger")) == 10 + 5
    assert drain_s(documents, gateway, container(documents, "Deployment", "gateway")) == 10 + 0 + 5


def test_a_service_without_its_migrations_job_fails(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        documents.remove(find(documents, "Job", "auth-migrate"))
        container(documents, "Job", "ledger-migrate")["image"] = "wallet:older"

    problems = broken(rendered["dev"], change)
    assert (
        "Deployment/auth: needs a migrations Job running python -m services.auth migrate with the same image"
        in problems
    )
    assert any(problem.startswith("Deployment/ledger: needs a migrations Job") for problem in problems)


def test_an_unpinned_image_and_a_missing_memory_limit_fail(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        redis = container(documents, "StatefulSet", "redis")
        redis["image"] = "redis:latest"
        del redis["resources"]["limits"]["memory"]

    problems = broken(rendered["dev"], change)
    assert (
        "StatefulSet/redis: container redis: image 'redis:latest' must be pinned by tag or digest, never latest"
        in problems
    )
    assert "StatefulSet/redis: container redis: needs a memory limit" in problems


def test_tmp_must_be_an_empty_dir(rendered: dict[str, list[Document]]) -> None:
    def change(documents: list[Document]) -> None:
        mounts = container(documents, "Deployment", "auth")["volumeMounts"]
        mounts[:] = [mount for mount in mounts if mount["mountPath"] != "/tmp"]

    assert "Deployment/auth: container auth: /tmp must be an emptyDir" in broken(rendered["prod"], change)
