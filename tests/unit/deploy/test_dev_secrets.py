"""deploy/dev_secrets.py: the dev Secrets are what the services decode, and exactly what the dev overlay mounts."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from deploy.dev_secrets import dev_secrets, main, platform_client_secret
from deploy.policy import containers, pod_spec, workloads
from deploy.render import render
from services.auth.config import decode_master_key
from services.kit.config import Env, decode_key

DEV = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "overlays" / "dev"


def by_name(documents: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {document["metadata"]["name"]: document["stringData"] for document in documents}


def test_keys_decode_with_the_services_own_decoders() -> None:
    made = by_name(dev_secrets("wallet-dev"))
    assert len(decode_master_key(made["auth-keys"]["signing-key-encryption-key"], "k")) == 32
    for key in ("kek", "blind-index-key", "backup-key"):
        assert len(decode_key(made["contacts-keys"][key], key)) == 32
    assert len({made["contacts-keys"][key] for key in ("kek", "blind-index-key", "backup-key")}) == 3


def test_each_run_makes_new_values_and_database_urls_share_the_password() -> None:
    first, second = by_name(dev_secrets("wallet-dev")), by_name(dev_secrets("wallet-dev"))
    assert first["auth-keys"] != second["auth-keys"]
    password = first["postgres-superuser"]["password"]
    url = Env({"DATABASE_URL": first["ledger-database"]["url"]}).url("DATABASE_URL", schemes=("postgresql",))
    assert url == f"postgresql://wallet:{password}@postgres:5432/wallet_ledger"


def _references(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(secret, key) pairs a workload needs: non-optional secretKeyRefs and *_FILE paths into Secret volumes."""
    spec = pod_spec(document)
    mounted = {
        volume["name"]: volume["secret"]["secretName"] for volume in spec.get("volumes", []) if "secret" in volume
    }
    needed: list[tuple[str, str]] = []
    for container in containers(document):
        directories = {
            mount["mountPath"]: mounted[mount["name"]]
            for mount in container.get("volumeMounts", [])
            if mount["name"] in mounted
        }
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference and not reference.get("optional", False):
                needed.append((reference["name"], reference["key"]))
            if variable["name"].endswith("_FILE"):
                path = PurePosixPath(variable["value"])
                assert str(path.parent) in directories, f"{variable['name']} points outside any mounted Secret"
                needed.append((directories[str(path.parent)], path.name))
    return needed


def test_every_secret_the_dev_overlay_uses_is_made_with_its_keys() -> None:
    made = by_name(dev_secrets("wallet-dev"))
    # Platform clients exist only once auth runs: their Secrets come from its bootstrap output.
    made["ledger-platform-client"] = platform_client_secret("ledger", "wallet-dev", "client_id=i\nclient_secret=s\n")[
        "stringData"
    ]
    needed = {pair for document in workloads(render(DEV)) for pair in _references(document)}
    assert ("contacts-keys", "blind-index-key") in needed
    assert ("wallet-redis", "url") in needed
    missing = {(name, key) for name, key in needed if key not in made.get(name, {})}
    assert missing == set()


def test_main_prints_secrets_for_the_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--namespace", "elsewhere"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert {document["kind"] for document in documents} == {"Secret"}
    assert {document["metadata"]["namespace"] for document in documents} == {"elsewhere"}


def test_platform_client_secrets_come_from_the_bootstrap_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("client_id=abc\nclient_secret=s3cret\n"))
    assert main(["--platform-client", "ledger"]) == 0
    [document] = yaml.safe_load_all(capsys.readouterr().out)
    assert document["metadata"]["name"] == "ledger-platform-client"
    assert document["stringData"] == {"client-id": "abc", "client-secret": "s3cret"}
    monkeypatch.setattr("sys.stdin", io.StringIO("auth: configuration error\n"))
    assert main(["--platform-client", "risk"]) == 1
    assert "no client id and secret" in capsys.readouterr().err
