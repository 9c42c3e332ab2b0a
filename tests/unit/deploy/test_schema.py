"""deploy/schema.py: strict Kubernetes schemas for built-in kinds, our shape checks for CloudNativePG kinds."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate.utils

from deploy.schema import KUBERNETES_VERSION, custom_resource_errors, schema_errors, validate_all

CONFIG_MAP: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}}
CLUSTER: dict[str, Any] = {
    "apiVersion": "postgresql.cnpg.io/v1",
    "kind": "Cluster",
    "metadata": {"name": "pg"},
    "spec": {
        "instances": 3,
        "imageName": "ghcr.io/cloudnative-pg/postgresql:17.6",
        "storage": {"size": "10Gi"},
        "bootstrap": {"initdb": {"database": "app"}},
        "inheritedMetadata": {"labels": {"app.kubernetes.io/name": "postgres"}},
        "backup": {
            "retentionPolicy": "30d",
            "barmanObjectStore": {
                "destinationPath": "s3://b/",
                "s3Credentials": {
                    "accessKeyId": {"name": "s3", "key": "id"},
                    "secretAccessKey": {"name": "s3", "key": "k"},
                },
            },
        },
    },
}


def test_a_valid_built_in_document_passes() -> None:
    assert schema_errors(CONFIG_MAP) == []


def test_strict_mode_refuses_unknown_fields() -> None:
    document = {**CONFIG_MAP, "spec": {"replicas": 1}}
    [error] = schema_errors(document)
    assert "ConfigMap/c" in error
    assert "'spec' was unexpected" in error


def test_wrong_types_are_reported_with_their_path() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": "two", "selector": {}, "template": {"spec": {"containers": []}}},
    }
    errors = schema_errors(deployment)
    assert any("spec.replicas" in error for error in errors)


def test_a_cloudnativepg_cluster_with_backups_passes_and_without_fails() -> None:
    assert schema_errors(CLUSTER) == []
    without_backup = copy.deepcopy(CLUSTER)
    del without_backup["spec"]["backup"]
    errors = schema_errors(without_backup)
    assert "Cluster/pg: spec.backup.barmanObjectStore.destinationPath must be a str" in errors
    boolean_instances = copy.deepcopy(CLUSTER)
    boolean_instances["spec"]["instances"] = True
    assert "Cluster/pg: spec.instances must be a int" in schema_errors(boolean_instances)


def test_scheduled_backups_need_six_cron_fields() -> None:
    backup = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "ScheduledBackup",
        "metadata": {"name": "daily"},
        "spec": {"schedule": "0 2 * * *", "cluster": {"name": "pg"}},
    }
    assert custom_resource_errors(backup) == ["ScheduledBackup/daily: spec.schedule needs 6 fields (seconds first)"]
    backup["spec"]["schedule"] = "0 0 2 * * *"
    assert custom_resource_errors(backup) == []


def test_an_unknown_custom_resource_is_an_error_not_a_pass() -> None:
    document = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_errors(document) == ["Widget/w: no schema for example.com/v1 Widget"]


def test_validate_all_collects_every_error_against_the_pinned_version() -> None:
    assert KUBERNETES_VERSION.startswith("1.")
    assert len(validate_all([CONFIG_MAP, {**CONFIG_MAP, "bogus": 1}, {**CONFIG_MAP, "also": 2}])) == 2


def test_the_schema_reader_is_memoised_only_during_a_batch() -> None:
    reader = kubernetes_validate.utils.schema_contents
    validate_all([CONFIG_MAP, CONFIG_MAP])
    assert kubernetes_validate.utils.schema_contents is reader
