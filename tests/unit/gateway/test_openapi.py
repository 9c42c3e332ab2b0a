from typing import Any

import pytest

from gateway.catalog import public_methods
from gateway.openapi import OpenApiDocument


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return OpenApiDocument(public_methods()).document()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_one_operation_per_http_binding(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    bindings = sum(len(method.bindings) for method in public_methods())
    assert len(operations) == bindings
    assert document["paths"]["/v1/accounts/{account_id}"]["get"]["operationId"] == "LedgerService_GetAccount"
    assert "post" in document["paths"]["/v1/transfers/{transfer_id}:post"]
    assert not any("Assess" in op for op in operations)


def test_comments_become_descriptions(document: dict[str, Any]) -> None:
    get_account = document["paths"]["/v1/accounts/{account_id}"]["get"]
    assert get_account["summary"] == "Reads one account with its current balances."
    account = _schema(document, "wallet.ledger.v1.Account")
    assert account["properties"]["accountId"]["description"]


def test_json_mapping_in_schemas(document: dict[str, Any]) -> None:
    money = _schema(document, "wallet.common.v1.Money")
    assert money["properties"]["amountMinor"]["type"] == "string"
    assert money["properties"]["amountMinor"]["format"] == "int64"
    assert money["additionalProperties"] is False
    transfer = _schema(document, "wallet.ledger.v1.Transfer")
    assert transfer["properties"]["status"]["type"] == "string"
    assert "TRANSFER_STATUS_POSTED" in transfer["properties"]["status"]["enum"]
    assert transfer["properties"]["createdAt"]["format"] == "date-time"


def test_security_and_errors(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    get_account = document["paths"]["/v1/accounts/{account_id}"]["get"]
    assert get_account["security"] == [{"bearer": []}]
    login = document["paths"]["/v1/sessions:login"]["post"]
    assert login["security"] == []
    problem = get_account["responses"]["default"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert {"code", "traceId", "status"} <= set(_schema(document, "Problem")["required"])


def test_parameters_and_bodies(document: dict[str, Any]) -> None:
    get_account = document["paths"]["/v1/accounts/{account_id}"]["get"]
    assert get_account["parameters"][0] == {
        "name": "account_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    listing = {p["name"]: p for p in document["paths"]["/v1/transfers"]["get"]["parameters"]}
    assert listing["pageSize"]["schema"]["type"] == "integer"
    assert listing["status"]["schema"]["type"] == "string"
    create = document["paths"]["/v1/transfers"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert "transferId" in body["properties"]
    assert "transferId" in body["required"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    post = document["paths"]["/v1/transfers/{transfer_id}:post"]["post"]
    post_body = post["requestBody"]["content"]["application/json"]["schema"]
    assert "transferId" not in post_body["properties"]  # bound by the path


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.removeprefix("#/components/schemas/") in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
