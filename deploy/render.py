"""Render a kustomization the way ``kubectl kustomize`` does, for the plain subset our manifests use.

The subset: ``resources`` (files and kustomization directories), ``namespace``, ``labels`` (metadata labels and,
with ``includeTemplates``, pod-template labels; never selectors, which are immutable), ``images``, ``replicas``
and strategic-merge ``patches`` (by file or inline, matched by kind and name). Any other field is refused, so an
overlay cannot silently mean something this renderer does not do. Transformers run in kustomize's order:
patches, namespace, labels, replicas, images. Output is sorted as kustomize's legacy order sorts it (namespaces
and config before the workloads that use them), so it can be piped to ``kubectl apply -f -``.

Where kubectl is on the PATH the tests render each overlay with both and compare (tests/unit/deploy).

``python -m deploy.render deploy/k8s/overlays/dev`` prints the rendered YAML.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from deploy.strategic_merge import merge

Document = dict[str, Any]

KUSTOMIZATION_FILE = "kustomization.yaml"
SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
# Kinds whose pod template gets the labels of `labels: [{includeTemplates: true}]`.
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
# kustomize's legacy sort: these kinds first, in this order; the rest by kind, then name.
ORDER_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


class RenderError(Exception):
    """The kustomization is outside the subset or inconsistent (a patch or replica target that does not exist)."""


def resource_id(document: Document) -> tuple[str, str, str, str]:
    metadata = document.get("metadata", {})
    return (document.get("apiVersion", ""), document["kind"], metadata.get("namespace", ""), metadata["name"])


def load_documents(path: Path) -> list[Document]:
    with path.open(encoding="utf-8") as handle:
        documents = [document for document in yaml.safe_load_all(handle) if document is not None]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document or "name" not in document.get("metadata", {}):
            raise RenderError(f"{path}: every document needs a kind and metadata.name")
    return documents


def render(directory: Path) -> list[Document]:
    """The documents the kustomization in ``directory`` produces, in apply order."""
    return sort_documents(_build(directory.resolve()))


def _build(directory: Path) -> list[Document]:
    kustomization_path = directory / KUSTOMIZATION_FILE
    if not kustomization_path.is_file():
        raise RenderError(f"{directory}: no {KUSTOMIZATION_FILE}")
    kustomization = yaml.safe_load(kustomization_path.read_text(encoding="utf-8")) or {}
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise RenderError(f"{kustomization_path}: outside the supported subset: {', '.join(sorted(unsupported))}")
    documents: list[Document] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        documents.extend(_build(path.resolve()) if path.is_dir() else load_documents(path))
    _check_unique(documents, kustomization_path)
    for patch in kustomization.get("patches", []):
        documents = [*_apply_patches(documents, _patch_documents(directory, patch), kustomization_path)]
    if "namespace" in kustomization:
        _set_namespace(documents, kustomization["namespace"])
    for label_set in kustomization.get("labels", []):
        _add_labels(documents, label_set, kustomization_path)
    for replica in kustomization.get("replicas", []):
        _set_replicas(documents, replica, kustomization_path)
    for image in kustomization.get("images", []):
        _set_image(documents, image)
    return documents


def _check_unique(documents: Sequence[Document], origin: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for document in documents:
        key = resource_id(document)
        if key in seen:
            raise RenderError(f"{origin}: {key[1]}/{key[3]} is defined twice")
        seen.add(key)


def _patch_documents(directory: Path, patch: dict[str, Any]) -> list[Document]:
    if set(patch) - {"path", "patch"}:
        raise RenderError(f"patch fields outside the subset (only path or patch): {sorted(patch)}")
    if "path" in patch:
        return load_documents(directory / patch["path"])
    documents = [document for document in yaml.safe_load_all(patch["patch"]) if document is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise RenderError("an inline patch must be one strategic-merge document")
    return documents


def _apply_patches(documents: list[Document], patches: Sequence[Document], origin: Path) -> list[Document]:
    for patch in patches:
        kind, name = patch.get("kind"), patch.get("metadata", {}).get("name")
        namespace = patch.get("metadata", {}).get("namespace")
        matches = [
            index
            for index, document in enumerate(documents)
            if document["kind"] == kind
            and document["metadata"]["name"] == name
            and (namespace is None or document["metadata"].get("namespace") == namespace)
        ]
        if len(matches) != 1:
            raise RenderError(f"{origin}: patch for {kind}/{name} matches {len(matches)} resources, not 1")
        documents[matches[0]] = merge(documents[matches[0]], patch)
    return documents


def _set_namespace(documents: Iterable[Document], namespace: str) -> None:
    for document in documents:
        if document["kind"] not in CLUSTER_SCOPED_KINDS:
            document["metadata"]["namespace"] = namespace


def _add_labels(documents: Iterable[Document], label_set: dict[str, Any], origin: Path) -> None:
    if label_set.get("includeSelectors", False):
        raise RenderError(f"{origin}: labels with includeSelectors would rewrite immutable selectors; not supported")
    if set(label_set) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise RenderError(f"{origin}: labels fields outside the subset: {sorted(label_set)}")
    pairs: dict[str, str] = label_set["pairs"]
    for document in documents:
        document["metadata"].setdefault("labels", {}).update(pairs)
        if label_set.get("includeTemplates", False) and document["kind"] in POD_TEMPLATE_KINDS:
            template = document.setdefault("spec", {}).setdefault("template", {})
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_replicas(documents: Iterable[Document], replica: dict[str, Any], origin: Path) -> None:
    targets = [d for d in documents if d["kind"] in SCALABLE_KINDS and d["metadata"]["name"] == replica["name"]]
    if not targets:
        raise RenderError(f"{origin}: replicas for {replica['name']!r}, which is no Deployment or StatefulSet")
    for document in targets:
        document["spec"]["replicas"] = replica["count"]


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/name:tag@sha256:...`` -> (name with registry, tag, digest)."""
    name, _, digest = reference.partition("@")
    tag: str | None = None
    last_colon = name.rfind(":")
    if last_colon > name.rfind("/"):
        name, tag = name[:last_colon], name[last_colon + 1 :]
    return name, tag, digest or None


def _set_image(documents: Iterable[Document], image: dict[str, Any]) -> None:
    for container in _containers(list(documents)):
        name, tag, digest = split_image(container.get("image", ""))
        if name != image["name"]:
            continue
        new_name = image.get("newName", name)
        if "digest" in image:
            container["image"] = f"{new_name}@{image['digest']}"
        elif "newTag" in image:
            container["image"] = f"{new_name}:{image['newTag']}"
        else:
            suffix = f":{tag}" if tag else ""
            container["image"] = f"{new_name}{suffix}" + (f"@{digest}" if digest else "")


def _containers(node: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere under ``node``."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict))
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found


def sort_documents(documents: Iterable[Document]) -> list[Document]:
    def rank(document: Document) -> tuple[int, str, str, str]:
        kind = document["kind"]
        if kind in ORDER_FIRST:
            position = ORDER_FIRST.index(kind)
        elif kind in ORDER_LAST:
            position = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
        else:
            position = len(ORDER_FIRST)
        metadata = document["metadata"]
        return (position, kind, metadata.get("namespace", ""), metadata["name"])

    return sorted(documents, key=rank)


def dump(documents: Iterable[Document]) -> str:
    return yaml.safe_dump_all(list(documents), sort_keys=True, default_flow_style=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.render", description=__doc__)
    parser.add_argument("directory", type=Path, help="a directory with a kustomization.yaml")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(dump(render(args.directory)))
    except RenderError as err:
        print(f"render: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
