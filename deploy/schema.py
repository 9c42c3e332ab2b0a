"""Schema validation of rendered manifests, offline.

Kubernetes' own kinds are checked by ``kubernetes-validate`` in strict mode (an unknown field is an error, as
``kubectl apply --validate=strict`` would say) against the pinned ``KUBERNETES_VERSION``; its schemas ship in the
wheel. Custom resources have no schema there: the CloudNativePG kinds we use get a shape check of their own below
(the fields we rely on, with their types), and any other kind without a schema is an error rather than a silent
pass.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils

from deploy.render import Document

# The oldest Kubernetes minor we support; the manifests use nothing newer (native gRPC probes are GA since 1.27,
# the preStop sleep action since 1.30).
KUBERNETES_VERSION = "1.32.0"

CNPG_API_VERSION = "postgresql.cnpg.io/v1"


@dataclass(frozen=True, slots=True)
class FieldShape:
    """A dotted path (``spec.backup.barmanObjectStore``) that must exist with a value of this type."""

    path: str
    kind: type


# What a custom resource of ours must carry to do its job (not a full schema: the operator's webhook has that).
CUSTOM_RESOURCE_SHAPES: dict[tuple[str, str], tuple[FieldShape, ...]] = {
    (CNPG_API_VERSION, "Cluster"): (
        FieldShape("spec.instances", int),
        FieldShape("spec.imageName", str),
        FieldShape("spec.storage.size", str),
        FieldShape("spec.bootstrap.initdb.database", str),
        FieldShape("spec.backup.retentionPolicy", str),
        FieldShape("spec.backup.barmanObjectStore.destinationPath", str),
        FieldShape("spec.backup.barmanObjectStore.s3Credentials.accessKeyId.name", str),
        FieldShape("spec.backup.barmanObjectStore.s3Credentials.secretAccessKey.name", str),
        FieldShape("spec.inheritedMetadata.labels", dict),
    ),
    (CNPG_API_VERSION, "ScheduledBackup"): (
        FieldShape("spec.schedule", str),
        FieldShape("spec.cluster.name", str),
    ),
    (CNPG_API_VERSION, "Database"): (
        FieldShape("spec.name", str),
        FieldShape("spec.owner", str),
        FieldShape("spec.cluster.name", str),
    ),
}
# Six cron fields, seconds first (CloudNativePG's scheduler); a five-field schedule would be misread.
SCHEDULE_FIELDS = 6


def describe(document: Document) -> str:
    return f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"


def lookup(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def custom_resource_errors(document: Document) -> list[str]:
    shapes = CUSTOM_RESOURCE_SHAPES.get((document.get("apiVersion", ""), document.get("kind", "")))
    if shapes is None:
        return [f"{describe(document)}: no schema for {document.get('apiVersion')} {document.get('kind')}"]
    errors: list[str] = []
    for shape in shapes:
        value = lookup(document, shape.path)
        # bool is an int in Python; a YAML `true` is never a count.
        if not isinstance(value, shape.kind) or (shape.kind is int and isinstance(value, bool)):
            errors.append(f"{describe(document)}: {shape.path} must be a {shape.kind.__name__}")
    schedule = lookup(document, "spec.schedule")
    is_backup = document.get("kind") == "ScheduledBackup"
    if is_backup and isinstance(schedule, str) and len(schedule.split()) != SCHEDULE_FIELDS:
        errors.append(f"{describe(document)}: spec.schedule needs {SCHEDULE_FIELDS} fields (seconds first)")
    return errors


def schema_errors(document: Document, version: str = KUBERNETES_VERSION) -> list[str]:
    """Why ``document`` is invalid, or nothing."""
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return custom_resource_errors(document)
    except kubernetes_validate.ValidationError as err:
        location = ".".join(str(part) for part in err.path)
        return [f"{describe(document)}: {location}: {err.message}"]
    return []


@contextlib.contextmanager
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate re-reads and re-parses its 1 MB definitions file for every document (two thirds of the
    time of a run); for one batch, read each schema file once. The parsed schemas are never modified."""
    original = kubernetes_validate.utils.schema_contents
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=256)(original)
    try:
        yield
    finally:
        kubernetes_validate.utils.schema_contents = original


def validate_all(documents: Iterable[Document], version: str = KUBERNETES_VERSION) -> Sequence[str]:
    with _schemas_read_once():
        return [error for document in documents for error in schema_errors(document, version)]
