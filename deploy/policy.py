"""The rules every rendered overlay must meet before it may reach a cluster. Each check returns readable
violations ("Deployment/ledger: ..."), never raises, so one run lists everything wrong.

- Secrets only from Secrets: no Secret object rendered from the repository, no secret-looking key or value in a
  ConfigMap or a literal env value (keys go in as ``*_FILE`` paths to a mounted Secret, URLs with passwords as
  ``secretKeyRef``).
- Every pod: non-root, RuntimeDefault seccomp, no privilege escalation, all capabilities dropped, a read-only root
  filesystem with an emptyDir at /tmp, no service-account token, requests and a memory limit, a pinned image.
- Every Deployment: liveness, readiness and startup probes, with gRPC liveness on the kit's separate ``liveness``
  health name (so a draining pod is not killed); rolling updates with maxUnavailable 0; a grace period longer than
  the drain; topology spread; a PodDisruptionBudget and an autoscaling/v2 HPA; a migrations Job for a service.
- Network: a default deny, DNS, exactly the edges the code needs (``ALLOWED_SERVICE_EDGES``) and no rule open to
  any peer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from deploy.network_policy import Endpoint, connection_allowed, open_rules, selector_matches, workload_endpoints
from deploy.render import Document, split_image
from services.kit.grpc_server import LIVENESS_SERVICE

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "Job", "DaemonSet"})
# A setting that names a secret ends with the secret's noun (CONTACTS_KEK, CONTACTS_KEK_V2, RISK_CLIENT_SECRET) or
# is a URL that carries a password; AUTH_ACCESS_TOKEN_TTL_S is a duration, not a token.
SECRET_NAME = re.compile(r"(KEY|KEK|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIALS?)(_V\d+)?$|^(DATABASE|REDIS)_URL$")
# A URL with a password (scheme://user:password@host) or a PEM block.
SECRET_VALUE = re.compile(r"://[^/\s:@]+:[^/\s@]+@|-----BEGIN ")
# The one writable path of a read-only root filesystem: Python's tempfile, the gateway's protoc scratch, run dir.
SCRATCH_DIR = "/tmp"  # noqa: S108 - a mount point in a manifest, not a file we create
DRAIN_GRACE_S_DEFAULT = 10.0
DRAIN_DELAY_S_DEFAULT = 0.0

APP_LABEL = "app.kubernetes.io/name"
WALLET_SERVICES = ("auth", "ledger", "contacts", "risk")
WALLET_PROCESSES = (*WALLET_SERVICES, "gateway")
# Who calls whom over gRPC, from the code: everyone verifies tokens with auth's JWKS; the gateway calls every
# service; risk resolves reviews and refunds complaints on the ledger and notifies customers through contacts; the
# ledger calls risk (its risk gate) and contacts (pay by phone).
ALLOWED_SERVICE_EDGES = frozenset(
    {
        *((name, "auth") for name in ("gateway", "ledger", "contacts", "risk")),
        *(("gateway", name) for name in ("ledger", "contacts", "risk")),
        ("risk", "ledger"),
        ("risk", "contacts"),
        ("ledger", "risk"),
        ("ledger", "contacts"),
    }
)
POSTGRES_PORT = 5432
REDIS_PORT = 6379
DNS_PORT = 53
POSTGRES_CLIENTS = WALLET_SERVICES
REDIS_CLIENTS = WALLET_PROCESSES
# Neighbours outside the namespace, as their usual Helm charts label them.
PROMETHEUS = Endpoint(
    "prometheus", "monitoring", {APP_LABEL: "prometheus"}, {"kubernetes.io/metadata.name": "monitoring"}
)
INGRESS_CONTROLLER = Endpoint(
    "ingress-nginx", "ingress-nginx", {APP_LABEL: "ingress-nginx"}, {"kubernetes.io/metadata.name": "ingress-nginx"}
)
KUBE_DNS = Endpoint(
    "kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"}
)
EXTERNAL = Endpoint("outside the cluster", "", {}, external=True)


def name_of(document: Document) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def pod_spec(document: Document) -> dict[str, Any]:
    spec: dict[str, Any] = document["spec"]["template"]["spec"]
    return spec


def containers(document: Document) -> list[dict[str, Any]]:
    spec = pod_spec(document)
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def workloads(documents: Iterable[Document]) -> list[Document]:
    return [document for document in documents if document["kind"] in WORKLOAD_KINDS]


def check(documents: Sequence[Document]) -> list[str]:
    """Every violation in a rendered overlay."""
    return [
        *secret_violations(documents),
        *pod_violations(documents),
        *deployment_violations(documents),
        *network_violations(documents),
    ]


# --- secrets -------------------------------------------------------------------------------------------------


def _secret_like(name: str, value: Any) -> str | None:
    if SECRET_NAME.search(name.upper()):
        return f"{name} looks like a secret"
    if isinstance(value, str) and SECRET_VALUE.search(value):
        return f"{name} holds a credential"
    return None


def secret_violations(documents: Sequence[Document]) -> Iterator[str]:
    for document in documents:
        if document["kind"] == "Secret":
            yield f"{name_of(document)}: Secrets come from the secret manager, never from the repository"
        if document["kind"] == "ConfigMap":
            for key, value in (document.get("data") or {}).items():
                problem = _secret_like(key, value)
                if problem:
                    yield f"{name_of(document)}: {problem}; use a Secret"
    for document in workloads(documents):
        for container in containers(document):
            for variable in container.get("env", []):
                if "value" in variable:
                    problem = _secret_like(variable["name"], variable["value"])
                    if problem:
                        yield f"{name_of(document)}: env {problem}; use secretKeyRef or *_FILE"


# --- pods ----------------------------------------------------------------------------------------------------


def _container_violations(container: Mapping[str, Any], pod_seccomp: bool) -> Iterator[str]:
    prefix = f"container {container['name']}"
    security = container.get("securityContext", {})
    if security.get("allowPrivilegeEscalation") is not False:
        yield f"{prefix}: allowPrivilegeEscalation must be false"
    if security.get("privileged"):
        yield f"{prefix}: must not be privileged"
    if security.get("readOnlyRootFilesystem") is not True:
        yield f"{prefix}: readOnlyRootFilesystem must be true"
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        yield f"{prefix}: must drop ALL capabilities"
    if security.get("capabilities", {}).get("add"):
        yield f"{prefix}: must add no capabilities"
    if security.get("runAsUser") == 0 or security.get("runAsNonRoot") is False:
        yield f"{prefix}: must not run as root"
    if not pod_seccomp and security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        yield f"{prefix}: seccompProfile must be RuntimeDefault"
    resources = container.get("resources", {})
    for kind in ("cpu", "memory"):
        if kind not in resources.get("requests", {}):
            yield f"{prefix}: needs a {kind} request"
    if "memory" not in resources.get("limits", {}):
        yield f"{prefix}: needs a memory limit"
    _, tag, digest = split_image(container.get("image", ""))
    if digest is None and tag in (None, "latest"):
        yield f"{prefix}: image {container.get('image')!r} must be pinned by tag or digest, never latest"


def _tmp_is_empty_dir(document: Document, container: Mapping[str, Any]) -> bool:
    empty_dirs = {volume["name"] for volume in pod_spec(document).get("volumes", []) if "emptyDir" in volume}
    return any(
        mount["mountPath"] == SCRATCH_DIR and mount["name"] in empty_dirs
        for mount in container.get("volumeMounts", [])
    )


def pod_violations(documents: Sequence[Document]) -> Iterator[str]:
    for document in workloads(documents):
        spec = pod_spec(document)
        security = spec.get("securityContext", {})
        if security.get("runAsNonRoot") is not True:
            yield f"{name_of(document)}: pod securityContext.runAsNonRoot must be true"
        if security.get("runAsUser") == 0:
            yield f"{name_of(document)}: pod must not run as uid 0"
        pod_seccomp = security.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        if spec.get("automountServiceAccountToken") is not False:
            yield f"{name_of(document)}: automountServiceAccountToken must be false (no pod talks to the API)"
        for host_field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host_field):
                yield f"{name_of(document)}: {host_field} is not allowed"
        if any("hostPath" in volume for volume in spec.get("volumes", [])):
            yield f"{name_of(document)}: hostPath volumes are not allowed"
        for container in containers(document):
            for problem in _container_violations(container, pod_seccomp):
                yield f"{name_of(document)}: {problem}"
            if not _tmp_is_empty_dir(document, container):
                yield f"{name_of(document)}: container {container['name']}: /tmp must be an emptyDir"


# --- deployments ---------------------------------------------------------------------------------------------


def _config_value(documents: Sequence[Document], document: Document, container: Mapping[str, Any], key: str) -> Any:
    for variable in container.get("env", []):
        if variable["name"] == key and "value" in variable:
            return variable["value"]
    namespace = document["metadata"].get("namespace", "")
    for source in container.get("envFrom", []):
        reference = source.get("configMapRef", {}).get("name")
        for config_map in documents:
            if (
                config_map["kind"] == "ConfigMap"
                and config_map["metadata"]["name"] == reference
                and config_map["metadata"].get("namespace", "") == namespace
                and key in config_map.get("data", {})
            ):
                return config_map["data"][key]
    return None


def drain_s(documents: Sequence[Document], document: Document, container: Mapping[str, Any]) -> float:
    """How long a pod may take to stop: preStop sleep, then DRAIN_DELAY_S serving, then DRAIN_GRACE_S in flight."""
    grace = _config_value(documents, document, container, "DRAIN_GRACE_S")
    delay = _config_value(documents, document, container, "DRAIN_DELAY_S")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace_s = DRAIN_GRACE_S_DEFAULT if grace is None else float(grace)
    delay_s = DRAIN_DELAY_S_DEFAULT if delay is None else float(delay)
    return grace_s + delay_s + float(pre_stop)


def _probe_violations(container: Mapping[str, Any]) -> Iterator[str]:
    prefix = f"container {container['name']}"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe not in container:
            yield f"{prefix}: needs a {probe}"
    liveness, readiness = container.get("livenessProbe", {}), container.get("readinessProbe", {})
    if "grpc" in liveness and liveness["grpc"].get("service") != LIVENESS_SERVICE:
        yield f"{prefix}: gRPC liveness must check the {LIVENESS_SERVICE!r} health name (readiness drops on drain)"
    if "grpc" in readiness and readiness["grpc"].get("service") == LIVENESS_SERVICE:
        yield f"{prefix}: gRPC readiness must not check {LIVENESS_SERVICE!r} (it stays SERVING while draining)"
    if "httpGet" in liveness and liveness["httpGet"].get("path") == readiness.get("httpGet", {}).get("path"):
        yield f"{prefix}: liveness and readiness must be different endpoints"


def _targets(documents: Sequence[Document], kind: str, document: Document) -> bool:
    labels = document["spec"]["template"]["metadata"].get("labels", {})
    namespace = document["metadata"].get("namespace", "")
    for other in documents:
        if other["kind"] != kind or other["metadata"].get("namespace", "") != namespace:
            continue
        if kind == "PodDisruptionBudget" and selector_matches(other["spec"].get("selector"), labels):
            return True
        reference = other.get("spec", {}).get("scaleTargetRef", {})
        scales_it = (reference.get("kind"), reference.get("name")) == ("Deployment", document["metadata"]["name"])
        if kind == "HorizontalPodAutoscaler" and scales_it:
            return bool(other["apiVersion"] == "autoscaling/v2")
    return False


def _rollout_violations(documents: Sequence[Document], document: Document) -> Iterator[str]:
    spec = document["spec"]
    strategy = spec.get("strategy", {})
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or strategy.get("rollingUpdate", {}).get(
        "maxUnavailable"
    ) not in (0, "0%"):
        yield "rolling updates need maxUnavailable 0"
    grace_period_s = pod_spec(document).get("terminationGracePeriodSeconds", 30)
    for container in pod_spec(document)["containers"]:
        if grace_period_s <= drain_s(documents, document, container):
            yield f"terminationGracePeriodSeconds {grace_period_s} must exceed the drain of {container['name']}"
    labels = spec["template"]["metadata"].get("labels", {})
    spread = pod_spec(document).get("topologySpreadConstraints", [])
    if not spread or not all(selector_matches(rule.get("labelSelector"), labels) for rule in spread):
        yield "needs topologySpreadConstraints selecting its own pods"
    if not _targets(documents, "PodDisruptionBudget", document):
        yield "needs a PodDisruptionBudget"
    if not _targets(documents, "HorizontalPodAutoscaler", document):
        yield "needs an autoscaling/v2 HorizontalPodAutoscaler"


def _migration_violations(documents: Sequence[Document], document: Document) -> Iterator[str]:
    jobs = [job for job in documents if job["kind"] == "Job"]
    for container in pod_spec(document)["containers"]:
        command = container.get("command", [])
        if len(command) != 3 or command[:2] != ["python", "-m"] or not command[2].startswith("services."):
            continue  # the gateway has no database
        wanted = [*command, "migrate"]
        if not any(
            job_container.get("command") == wanted and job_container.get("image") == container.get("image")
            for job in jobs
            for job_container in containers(job)
        ):
            yield f"needs a migrations Job running {' '.join(wanted)} with the same image"


def deployment_violations(documents: Sequence[Document]) -> Iterator[str]:
    for document in documents:
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in pod_spec(document)["containers"]:
            for problem in _probe_violations(container):
                if document["kind"] == "Deployment" or "startupProbe" not in problem:
                    yield f"{name_of(document)}: {problem}"
        if document["kind"] == "Deployment":
            for problem in [*_rollout_violations(documents, document), *_migration_violations(documents, document)]:
                yield f"{name_of(document)}: {problem}"


# --- network -------------------------------------------------------------------------------------------------


def _pods(endpoints: Sequence[Endpoint], app: str, component: str | None = None) -> list[Endpoint]:
    return [
        endpoint
        for endpoint in endpoints
        if endpoint.labels.get(APP_LABEL) == app
        and (component is None or endpoint.labels.get("app.kubernetes.io/component") == component)
    ]


def _named_port(documents: Sequence[Document], app: str, port_name: str) -> int | None:
    for document in documents:
        if document["kind"] == "Deployment" and document["metadata"]["name"] == app:
            for container in pod_spec(document)["containers"]:
                for port in container.get("ports", []):
                    if port.get("name") == port_name:
                        return int(port["containerPort"])
    return None


def _has_default_deny(documents: Sequence[Document]) -> bool:
    return any(
        document["kind"] == "NetworkPolicy"
        and not document["spec"].get("podSelector")
        and {"Ingress", "Egress"} <= set(document["spec"].get("policyTypes", []))
        and not document["spec"].get("ingress")
        and not document["spec"].get("egress")
        for document in documents
    )


def _required_edges(documents: Sequence[Document]) -> Iterator[tuple[str, Endpoint, Endpoint, int]]:
    """(why, source, target, port) for every connection the suite needs."""
    endpoints = workload_endpoints(documents)
    servers = {app: _pods(endpoints, app, "server") for app in WALLET_PROCESSES}
    for source_app, target_app in sorted(ALLOWED_SERVICE_EDGES):
        port = _named_port(documents, target_app, "grpc")
        for source in _pods(endpoints, source_app, "server"):
            for target in servers[target_app]:
                if port is not None:
                    yield f"{source_app} -> {target_app}", source, target, port
    for store, port, clients in (("postgres", POSTGRES_PORT, POSTGRES_CLIENTS), ("redis", REDIS_PORT, REDIS_CLIENTS)):
        targets = _pods(endpoints, store) or [EXTERNAL]
        for app in clients:
            for source in _pods(endpoints, app):
                for target in targets:
                    yield f"{app} -> {store}", source, target, port
    for app in WALLET_PROCESSES:
        metrics_port = _named_port(documents, app, "metrics")
        for target in servers[app]:
            if metrics_port is not None:
                yield f"prometheus -> {app} metrics", PROMETHEUS, target, metrics_port
    for port_name in ("http", "grpc"):
        port = _named_port(documents, "gateway", port_name)
        for target in servers["gateway"]:
            if port is not None:
                yield f"ingress -> gateway {port_name}", INGRESS_CONTROLLER, target, port


def _forbidden_edges(documents: Sequence[Document]) -> Iterator[tuple[str, Endpoint, Endpoint, int]]:
    endpoints = workload_endpoints(documents)
    for source_app in WALLET_PROCESSES:
        for target_app in WALLET_PROCESSES:
            port = _named_port(documents, target_app, "grpc")
            if source_app == target_app or (source_app, target_app) in ALLOWED_SERVICE_EDGES or port is None:
                continue
            for source in _pods(endpoints, source_app, "server"):
                for target in _pods(endpoints, target_app, "server"):
                    yield f"{source_app} -> {target_app}", source, target, port
    for source in _pods(endpoints, "gateway"):
        for target in _pods(endpoints, "postgres"):
            yield "gateway -> postgres", source, target, POSTGRES_PORT


def network_violations(documents: Sequence[Document]) -> Iterator[str]:
    if not _has_default_deny(documents):
        yield "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)"
    yield from open_rules(documents)
    for endpoint in workload_endpoints(documents):
        for protocol in ("UDP", "TCP"):
            if not connection_allowed(documents, endpoint, KUBE_DNS, DNS_PORT, protocol):
                yield f"{endpoint.name}: DNS ({protocol} {DNS_PORT}) to kube-dns is not allowed"
    for why, source, target, port in _required_edges(documents):
        if not connection_allowed(documents, source, target, port):
            yield f"{why}: {source.name} cannot reach {target.name}:{port}"
    for why, source, target, port in _forbidden_edges(documents):
        if connection_allowed(documents, source, target, port):
            yield f"{why}: {source.name} may reach {target.name}:{port}, which the code never needs"
