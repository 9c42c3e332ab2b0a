"""deploy/strategic_merge.py: kustomize's strategic-merge semantics for the fields we patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deploy.strategic_merge import PatchError, merge


def deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def test_maps_merge_key_by_key_and_null_deletes() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge(base, {"a": {"c": 20, "e": 5}, "d": None}) == {"a": {"b": 1, "c": 20, "e": 5}}


def test_replace_directive_replaces_a_whole_map() -> None:
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "z": 9}}) == {"a": {"z": 9}}


def test_unknown_directive_is_refused() -> None:
    with pytest.raises(PatchError, match="unsupported directive"):
        merge({"a": {}}, {"a": {"$patch": "retainKeys"}})


def test_containers_merge_by_name_keeping_order_and_appending_new_ones() -> None:
    base = deployment([{"name": "app", "image": "a", "resources": {"limits": {"cpu": "1"}}}, {"name": "side"}])
    patch = deployment([{"name": "app", "resources": {"requests": {"cpu": "50m"}}}, {"name": "new", "image": "n"}])
    merged = merge(base, patch)["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in merged] == ["app", "side", "new"]
    assert merged[0] == {
        "name": "app",
        "image": "a",
        "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "50m"}},
    }


def test_delete_directive_removes_a_list_item() -> None:
    base = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    assert merge(base, {"env": [{"name": "A", "$patch": "delete"}]}) == {"env": [{"name": "B", "value": "2"}]}


def test_ports_merge_by_container_port_or_service_port() -> None:
    container = {"ports": [{"containerPort": 80, "name": "http"}]}
    merged = merge(container, {"ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 90}]})
    assert merged == {"ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 90}]}
    service = {"ports": [{"port": 80, "targetPort": "http"}]}
    assert merge(service, {"ports": [{"port": 80, "name": "web"}]}) == {
        "ports": [{"port": 80, "targetPort": "http", "name": "web"}]
    }


def test_lists_without_a_merge_key_are_replaced() -> None:
    base = {"rules": [{"host": "a"}], "args": ["x", "y"]}
    assert merge(base, {"rules": [{"host": "b"}], "args": ["z"]}) == {"rules": [{"host": "b"}], "args": ["z"]}


def test_a_keyed_list_item_without_its_key_is_an_error() -> None:
    with pytest.raises(PatchError, match="no merge key 'name'"):
        merge({"containers": [{"name": "a"}]}, {"containers": [{"image": "b"}]})


def test_inputs_are_not_modified() -> None:
    base = deployment([{"name": "app", "env": [{"name": "A", "value": "1"}]}])
    patch = deployment([{"name": "app", "env": [{"name": "B", "value": "2"}]}])
    before = (copy.deepcopy(base), copy.deepcopy(patch))
    merged = merge(base, patch)
    merged["spec"]["template"]["spec"]["containers"][0]["env"].clear()
    assert (base, patch) == before
