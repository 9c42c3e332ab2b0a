"""deploy/network_policy.py: what a set of NetworkPolicies allows, on small hand-made policies."""

from __future__ import annotations

from typing import Any

from deploy.network_policy import Endpoint, connection_allowed, open_rules, selector_matches, workload_endpoints

NS = {"kubernetes.io/metadata.name": "wallet"}
LEDGER = Endpoint("ledger", "wallet", {"app": "ledger"}, NS)
RISK = Endpoint("risk", "wallet", {"app": "risk"}, NS)
OTHER_NAMESPACE_RISK = Endpoint("risk", "other", {"app": "risk"}, {"kubernetes.io/metadata.name": "other"})
OUTSIDE = Endpoint("managed redis", "", {}, external=True)


def policy(name: str, selector: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "wallet"},
        "spec": {"podSelector": selector, **spec},
    }


DENY = policy("deny", {}, policyTypes=["Ingress", "Egress"])
LEDGER_TO_RISK = policy(
    "ledger",
    {"matchLabels": {"app": "ledger"}},
    policyTypes=["Egress"],
    egress=[{"to": [{"podSelector": {"matchLabels": {"app": "risk"}}}], "ports": [{"port": 50054}]}],
)
RISK_FROM_LEDGER = policy(
    "risk",
    {"matchLabels": {"app": "risk"}},
    policyTypes=["Ingress"],
    ingress=[
        {"from": [{"podSelector": {"matchLabels": {"app": "ledger"}}}], "ports": [{"port": 50054, "protocol": "TCP"}]}
    ],
)


def test_selector_semantics() -> None:
    labels = {"app": "ledger", "tier": "server"}
    assert selector_matches(None, labels)
    assert selector_matches({}, labels)
    assert selector_matches({"matchLabels": {"app": "ledger"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "risk"}}, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["ledger", "risk"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["ledger"]}]}, labels
    )
    assert selector_matches({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)


def test_without_policies_everything_flows_and_default_deny_stops_it() -> None:
    assert connection_allowed([], LEDGER, RISK, 50054)
    assert not connection_allowed([DENY], LEDGER, RISK, 50054)


def test_an_edge_needs_egress_at_the_source_and_ingress_at_the_target() -> None:
    assert connection_allowed([DENY, LEDGER_TO_RISK, RISK_FROM_LEDGER], LEDGER, RISK, 50054)
    assert not connection_allowed([DENY, LEDGER_TO_RISK], LEDGER, RISK, 50054)
    assert not connection_allowed([DENY, RISK_FROM_LEDGER], LEDGER, RISK, 50054)
    assert not connection_allowed([DENY, LEDGER_TO_RISK, RISK_FROM_LEDGER], LEDGER, RISK, 50055)
    assert not connection_allowed([DENY, LEDGER_TO_RISK, RISK_FROM_LEDGER], LEDGER, RISK, 50054, "UDP")
    assert not connection_allowed([DENY, LEDGER_TO_RISK, RISK_FROM_LEDGER], RISK, LEDGER, 50054)


def test_a_pod_selector_peer_stays_in_its_namespace() -> None:
    assert not connection_allowed([DENY, LEDGER_TO_RISK], LEDGER, OTHER_NAMESPACE_RISK, 50054)
    cross = policy(
        "x",
        {"matchLabels": {"app": "ledger"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}]}],
    )
    assert connection_allowed([DENY, cross], LEDGER, OTHER_NAMESPACE_RISK, 1)


def test_ip_blocks_reach_only_outside_endpoints() -> None:
    external = policy(
        "redis",
        {"matchLabels": {"app": "ledger"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"port": 6379}]}],
    )
    assert connection_allowed([DENY, external], LEDGER, OUTSIDE, 6379)
    assert not connection_allowed([DENY, external], LEDGER, RISK, 6379)


def test_open_rules_are_found() -> None:
    wide = policy(
        "wide", {}, policyTypes=["Ingress", "Egress"], ingress=[{"ports": [{"port": 1}]}], egress=[{"to": [{}]}]
    )
    assert open_rules([DENY, LEDGER_TO_RISK, wide]) == [
        "NetworkPolicy/wide: a ingress rule allows any peer",
        "NetworkPolicy/wide: a egress rule allows any peer",
    ]


def test_workload_endpoints_come_from_pod_templates_and_cnpg_clusters() -> None:
    documents = [
        {"kind": "Namespace", "metadata": {"name": "wallet", "labels": {"team": "pay"}}},
        {
            "kind": "Deployment",
            "metadata": {"name": "ledger", "namespace": "wallet"},
            "spec": {"template": {"metadata": {"labels": {"app": "ledger"}}}},
        },
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "wallet"},
            "spec": {"inheritedMetadata": {"labels": {"app": "postgres"}}},
        },
    ]
    endpoints = workload_endpoints(documents)
    assert [endpoint.labels for endpoint in endpoints] == [
        {"app": "ledger"},
        {"app": "postgres", "cnpg.io/cluster": "pg"},
    ]
    assert endpoints[0].namespace_labels == {"team": "pay", "kubernetes.io/metadata.name": "wallet"}
