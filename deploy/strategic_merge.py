"""Strategic-merge patches, as kustomize applies them, for the fields our manifests patch.

Maps merge key by key (a ``null`` value deletes the key; ``$patch: replace`` replaces the whole map). Lists whose
items Kubernetes identifies by a merge key (containers by ``name``, volume mounts by ``mountPath``, ...) merge item
by item, keeping the base's order and appending new items; an item with ``$patch: delete`` removes its match. Every
other list is replaced whole, as Kubernetes does for lists without a patch strategy.
"""

from __future__ import annotations

import copy
from typing import Any

# Field name -> the key that identifies an item of that list (Kubernetes' x-kubernetes-patch-merge-key).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
# `ports` is keyed by containerPort in a container and by port in a Service.
PORT_KEYS = ("containerPort", "port")
DIRECTIVE = "$patch"


class PatchError(Exception):
    """The patch cannot be applied (an unknown directive, a list item without its merge key)."""


def merge(base: Any, patch: Any) -> Any:
    """The base with the patch applied; neither argument is modified."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return _merge_maps(base, patch)
    return copy.deepcopy(patch)


def _merge_maps(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != DIRECTIVE}
    if directive is not None:
        raise PatchError(f"unsupported directive {DIRECTIVE}: {directive} on a map")
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = _merge_lists(key, merged[key], value)
        elif key in merged:
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = _without_directives(value)
    return merged


def _list_key(field: str, items: list[Any]) -> str | None:
    if field in MERGE_KEYS:
        return MERGE_KEYS[field]
    if field == "ports":
        for candidate in PORT_KEYS:
            if all(isinstance(item, dict) and candidate in item for item in items):
                return candidate
    return None


def _merge_lists(field: str, base: list[Any], patch: list[Any]) -> list[Any]:
    key = _list_key(field, [*base, *patch])
    if key is None:
        return _without_directives(patch)  # type: ignore[no-any-return]
    merged = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"an item of {field} has no merge key {key!r}")
        index = next((i for i, existing in enumerate(merged) if existing.get(key) == item[key]), None)
        if item.get(DIRECTIVE) == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(_without_directives(item))
        else:
            merged[index] = merge(merged[index], item)
    return merged


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_directives(item) for key, item in value.items() if key != DIRECTIVE}
    if isinstance(value, list):
        return [_without_directives(item) for item in value]
    return copy.deepcopy(value)
