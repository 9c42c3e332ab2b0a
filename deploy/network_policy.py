"""What the rendered NetworkPolicies allow: Kubernetes' semantics for the subset of peers we use.

A pod is isolated for a direction once any policy of its namespace selects it with that policy type; then a
connection is allowed only if some rule of a selecting policy lists a matching peer and port. Peers are a pod
selector (same namespace), a namespace selector with an optional pod selector, or an ipBlock. The latter matches
only endpoints outside the cluster (a managed Redis): the checks here do not reason about pod IPs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.render import Document

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"})
CNPG_CLUSTER_LABEL = "cnpg.io/cluster"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One kind of pod (all replicas of a workload share labels), or something outside the cluster."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    external: bool = False


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Label-selector semantics: an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def workload_endpoints(documents: Iterable[Document]) -> list[Endpoint]:
    """The pods the rendered documents make: pod templates, and CloudNativePG clusters' instances."""
    documents = list(documents)
    namespace_labels = {
        document["metadata"]["name"]: dict(document["metadata"].get("labels", {}))
        for document in documents
        if document["kind"] == "Namespace"
    }
    endpoints: list[Endpoint] = []
    for document in documents:
        namespace = document["metadata"].get("namespace", "")
        ns_labels = {**namespace_labels.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}
        name = f"{document['kind']}/{document['metadata']['name']}"
        if document["kind"] in POD_TEMPLATE_KINDS:
            labels = document["spec"]["template"].get("metadata", {}).get("labels", {})
            endpoints.append(Endpoint(name, namespace, dict(labels), ns_labels))
        elif document["kind"] == "Cluster" and document["apiVersion"].startswith("postgresql.cnpg.io/"):
            inherited = document["spec"].get("inheritedMetadata", {}).get("labels", {})
            labels = {**inherited, CNPG_CLUSTER_LABEL: document["metadata"]["name"]}
            endpoints.append(Endpoint(name, namespace, labels, ns_labels))
    return endpoints


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        return endpoint.external
    if endpoint.external:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], endpoint.namespace_labels):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), endpoint.labels)


def _port_matches(ports: Sequence[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(entry.get("port") in (None, port) and entry.get("protocol", "TCP") == protocol for entry in ports)


def _selecting(policies: Iterable[Document], endpoint: Endpoint, policy_type: str) -> list[Document]:
    return [
        policy
        for policy in policies
        if policy["metadata"].get("namespace", "") == endpoint.namespace
        and policy_type in policy["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(policy["spec"].get("podSelector"), endpoint.labels)
    ]


def _allowed(
    policies: Sequence[Document], selected: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    policy_type, rules_key, peers_key = (
        ("Egress", "egress", "to") if direction == "egress" else ("Ingress", "ingress", "from")
    )
    if selected.external:
        return True  # not ours to police
    selecting = _selecting(policies, selected, policy_type)
    if not selecting:
        return True  # not isolated
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peers_match = not peers or any(
                _peer_matches(peer, policy["metadata"].get("namespace", ""), other) for peer in peers
            )
            if peers_match and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connection_allowed(
    documents: Iterable[Document], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether ``source`` may open a connection to ``target:port``: egress at one end, ingress at the other."""
    policies = [document for document in documents if document["kind"] == "NetworkPolicy"]
    return _allowed(policies, source, target, port, protocol, "egress") and _allowed(
        policies, target, source, port, protocol, "ingress"
    )


def open_rules(documents: Iterable[Document]) -> list[str]:
    """Rules that allow any peer (no ``from``/``to``, or an empty peer): they undo the default deny."""
    found: list[str] = []
    for policy in documents:
        if policy["kind"] != "NetworkPolicy":
            continue
        for rules_key, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                if not peers or any(peer == {} for peer in peers):
                    found.append(f"NetworkPolicy/{policy['metadata']['name']}: a {rules_key} rule allows any peer")
    return found
