"""deploy/render.py: the plain kustomize subset, on small kustomizations made here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.render import RenderError, main, render, sort_documents, split_image


def write(path: Path, *documents: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(list(documents)), encoding="utf-8")


def deployment(name: str, image: str = "wallet") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }


def kustomization(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **fields}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    write(
        tmp_path / "base" / "app.yaml",
        deployment("ledger"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ledger"}},
    )
    write(tmp_path / "base" / "ns.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wallet"}})
    write(tmp_path / "base" / "kustomization.yaml", kustomization(resources=["ns.yaml", "app.yaml"]))
    return tmp_path / "base"


def test_resources_namespace_labels_replicas_images_and_patches(base: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ledger"},
        "spec": {"template": {"spec": {"containers": [{"name": "ledger", "args": ["--x"]}]}}},
    }
    write(overlay / "patch.yaml", patch)
    write(overlay / "extra.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra"}})
    write(
        overlay / "kustomization.yaml",
        kustomization(
            resources=["../base", "extra.yaml"],
            namespace="wallet-dev",
            labels=[{"pairs": {"team": "payments"}, "includeSelectors": False, "includeTemplates": True}],
            replicas=[{"name": "ledger", "count": 1}],
            images=[{"name": "wallet", "newName": "registry.example.com/wallet", "newTag": "1.2.3"}],
            patches=[{"path": "patch.yaml"}],
        ),
    )
    documents = {document["kind"]: document for document in render(overlay)}
    ledger = documents["Deployment"]
    assert ledger["metadata"]["namespace"] == "wallet-dev"
    assert documents["ConfigMap"]["metadata"]["namespace"] == "wallet-dev"
    assert "namespace" not in documents["Namespace"]["metadata"]  # cluster-scoped
    assert ledger["spec"]["replicas"] == 1
    assert ledger["metadata"]["labels"] == {"app": "ledger", "team": "payments"}
    assert ledger["spec"]["template"]["metadata"]["labels"] == {"app": "ledger", "team": "payments"}
    assert ledger["spec"]["selector"]["matchLabels"] == {"app": "ledger"}  # selectors are immutable: untouched
    container = ledger["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "ledger", "image": "registry.example.com/wallet:1.2.3", "args": ["--x"]}
    assert "template" not in documents["Service"].get("spec", {})


def test_inline_patch_and_digest_image(base: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    inline = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ledger\nspec:\n  type: ClusterIP\n"
    digest = "sha256:" + "a" * 64
    write(
        overlay / "kustomization.yaml",
        kustomization(
            resources=["../base"], patches=[{"patch": inline}], images=[{"name": "wallet", "digest": digest}]
        ),
    )
    documents = {document["kind"]: document for document in render(overlay)}
    assert documents["Service"]["spec"] == {"type": "ClusterIP"}
    assert documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == f"wallet@{digest}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"commonLabels": {"a": "b"}}, "outside the supported subset: commonLabels"),
        ({"configMapGenerator": []}, "outside the supported subset"),
        ({"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]}, "immutable selectors"),
        ({"replicas": [{"name": "nothing", "count": 1}]}, "no Deployment or StatefulSet"),
        ({"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}]}, "only path or patch"),
    ],
)
def test_outside_the_subset_or_inconsistent_is_refused(
    base: Path, tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "kustomization.yaml", kustomization(resources=["../base"], **fields))
    with pytest.raises(RenderError, match=message):
        render(overlay)


def test_a_patch_must_match_exactly_one_resource(base: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "p.yaml", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "risk"}})
    write(overlay / "kustomization.yaml", kustomization(resources=["../base"], patches=[{"path": "p.yaml"}]))
    with pytest.raises(RenderError, match="matches 0 resources"):
        render(overlay)


def test_duplicates_and_missing_kustomization_are_refused(base: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    write(overlay / "again.yaml", deployment("ledger"))
    write(overlay / "kustomization.yaml", kustomization(resources=["../base", "again.yaml"]))
    with pytest.raises(RenderError, match="defined twice"):
        render(overlay)
    with pytest.raises(RenderError, match=r"no kustomization\.yaml"):
        render(tmp_path / "nowhere")


def test_documents_need_kind_and_name(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", {"kind": "ConfigMap", "metadata": {}})
    write(tmp_path / "kustomization.yaml", kustomization(resources=["bad.yaml"]))
    with pytest.raises(RenderError, match=r"kind and metadata\.name"):
        render(tmp_path)


def test_sort_puts_namespaces_and_config_before_workloads() -> None:
    kinds = ["HorizontalPodAutoscaler", "Deployment", "ConfigMap", "Namespace", "Job", "ServiceAccount"]
    documents = [{"kind": kind, "metadata": {"name": "x"}} for kind in kinds]
    assert [document["kind"] for document in sort_documents(documents)] == [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
    ]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("wallet", ("wallet", None, None)),
        ("wallet:dev", ("wallet", "dev", None)),
        ("registry:5000/team/wallet", ("registry:5000/team/wallet", None, None)),
        ("registry:5000/wallet:1.0@sha256:ab", ("registry:5000/wallet", "1.0", "sha256:ab")),
    ],
)
def test_split_image(reference: str, expected: tuple[str, str | None, str | None]) -> None:
    assert split_image(reference) == expected


def test_main_prints_yaml_or_the_error(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(base)]) == 0
    assert {document["kind"] for document in yaml.safe_load_all(capsys.readouterr().out)} == {
        "Namespace",
        "Service",
        "Deployment",
    }
    assert main([str(tmp_path / "missing")]) == 1
    assert "no kustomization.yaml" in capsys.readouterr().err
