"""The OpenAPI 3.1 document of the HTTP API, generated from the same descriptors as the routes.

Schemas follow the proto3 JSON mapping the gateway speaks: lowerCamelCase properties, 64-bit integers as strings,
enums as string enums, well-known types in their JSON form. Comments of the ``.proto`` files become descriptions.
Every operation answers ``application/problem+json`` on failure; every non-anonymous one needs the bearer token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.catalog import HttpBinding, PublicMethod
from gateway.proto_comments import load_comments
from gateway.transcode import idempotency_field

OPENAPI_VERSION = "3.1.0"
PROBLEM_SCHEMA = "Problem"
# How deep nested request fields are offered as dotted query parameters (`filter.status`).
QUERY_DEPTH_MAX = 3

_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_INT32_TYPES = frozenset({FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32})
_UINT32_TYPES = frozenset({FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32})
_INT64_SCHEMA = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "minimum": 0},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "int64"},
}
_PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the stable ErrorInfo reason clients switch on.",
    "required": ["type", "title", "status", "code", "traceId"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "ErrorInfo reason, e.g. INSUFFICIENT_FUNDS."},
        "traceId": {"type": "string", "description": "Trace id to quote when reporting the failure."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "description"],
                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
            },
        },
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "preconditions": {"type": "array", "items": {"type": "string"}},
        "retryAfterSeconds": {"type": "integer"},
    },
}


def _is_map(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated) and field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_required(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


class _Builder:
    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.schemas: dict[str, Any] = {PROBLEM_SCHEMA: _PROBLEM}

    def _described(self, schema: dict[str, Any], full_name: str) -> dict[str, Any]:
        comment = self.comments.get(full_name)
        if comment:
            return {**schema, "description": comment}
        return schema

    def value_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        """The schema of one value of the field (one element when it is repeated)."""
        if field.enum_type is not None:
            return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
        if field.message_type is not None:
            return self.message_ref(field.message_type)
        if field.type in _INT64_TYPES:
            return dict(_INT64_SCHEMA)
        if field.type in _INT32_TYPES:
            return {"type": "integer", "format": "int32"}
        if field.type in _UINT32_TYPES:
            return {"type": "integer", "minimum": 0, "maximum": 4_294_967_295}
        if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return {"type": "number"}
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}

    def field_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        if _is_map(field):
            assert field.message_type is not None
            value_field = field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value_schema(value_field)}
        elif field.is_repeated:
            schema = {"type": "array", "items": self.value_schema(field)}
        else:
            schema = self.value_schema(field)
        if "$ref" in schema:
            return schema  # siblings of $ref are allowed in 3.1, but keep references bare for simple tools
        return self._described(schema, field.full_name)

    def message_ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.schemas:
            self.schemas[message.full_name] = {}  # placeholder first: messages may refer to themselves
            self.schemas[message.full_name] = self.object_schema(message)
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def object_schema(
        self, message: Descriptor, *, excluded: frozenset[str] = frozenset(), required_from_behavior: bool = False
    ) -> dict[str, Any]:
        properties = {
            field.json_name: self.field_schema(field) for field in message.fields if field.name not in excluded
        }
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required_from_behavior:
            required = [
                field.json_name for field in message.fields if field.name not in excluded and _is_required(field)
            ]
            if required:
                schema["required"] = required
        return self._described(schema, message.full_name)

    def query_parameters(
        self, message: Descriptor, excluded: frozenset[str], prefix: str = "", depth: int = 1
    ) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        for field in message.fields:
            if field.name in excluded or _is_map(field):
                continue
            name = prefix + field.json_name
            if field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
                if not field.is_repeated and depth < QUERY_DEPTH_MAX:
                    parameters.extend(self.query_parameters(field.message_type, frozenset(), name + ".", depth + 1))
                continue
            schema = self.value_schema(field)
            if field.is_repeated:
                schema = {"type": "array", "items": schema}
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
            if field.is_repeated:
                parameter.update(style="form", explode=True)
            comment = self.comments.get(field.full_name)
            if comment:
                parameter["description"] = comment
            parameters.append(parameter)
        return parameters


def _path_field(message: Descriptor, variable: str) -> FieldDescriptor:
    field: FieldDescriptor | None = None
    for part in variable.split("."):
        field = message.fields_by_name[part]
        if field.message_type is not None:
            message = field.message_type
    assert field is not None
    return field


def _operation(builder: _Builder, method: PublicMethod, binding: HttpBinding, operation_id: str) -> dict[str, Any]:
    request = method.descriptor.input_type
    comment = builder.comments.get(method.descriptor.full_name, "")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [method.descriptor.containing_service.name],
        "summary": comment.split("\n", 1)[0] if comment else method.descriptor.name,
        "security": [] if method.policy.anonymous else [{"bearer": []}],
    }
    if comment:
        operation["description"] = comment
    parameters: list[dict[str, Any]] = []
    for variable in binding.template.variables:
        schema = builder.value_schema(_path_field(request, variable))
        parameters.append({"name": variable, "in": "path", "required": True, "schema": schema})
    bound_by_path = frozenset(variable.split(".")[0] for variable in binding.template.variables)
    if binding.body == "":
        parameters.extend(builder.query_parameters(request, bound_by_path))
    elif binding.body != "*":
        parameters.extend(builder.query_parameters(request, bound_by_path | {binding.body}))
    idempotency = idempotency_field(method, binding)
    if idempotency is not None:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": f"Client-chosen UUID copied into `{idempotency}` (makes retries safe).",
                "schema": {"type": "string"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if binding.body == "*":
        body_schema = builder.object_schema(request, excluded=bound_by_path, required_from_behavior=True)
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    elif binding.body:
        body_schema = builder.field_schema(request.fields_by_name[binding.body])
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    response = method.descriptor.output_type
    if binding.response_body:
        response_schema = builder.field_schema(response.fields_by_name[binding.response_body])
    else:
        response_schema = builder.message_ref(response)
    operation["responses"] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": response_schema}}},
        "default": {
            "description": "A problem (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}},
        },
    }
    return operation


def build_document(methods: Sequence[PublicMethod], comments: dict[str, str]) -> dict[str, Any]:
    builder = _Builder(comments)
    paths: dict[str, dict[str, Any]] = {}
    for method in methods:
        for index, binding in enumerate(method.bindings):
            operation_id = f"{method.descriptor.containing_service.name}_{method.descriptor.name}"
            if index > 0:
                operation_id += f"_{index + 1}"
            item = paths.setdefault(binding.template.openapi_path(), {})
            item[binding.verb.lower()] = _operation(builder, method, binding, operation_id)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Wallet platform API",
            "version": "v1",
            "description": "HTTP/JSON API of the wallet platform, transcoded to the services' gRPC contracts.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


class OpenApiDocument:
    """Built on first use and cached (reading the comments compiles the protos once)."""

    def __init__(
        self, methods: Sequence[PublicMethod], comments: Callable[[], dict[str, str]] = load_comments
    ) -> None:
        self._methods = list(methods)
        self._comments = comments
        self._encoded: bytes | None = None

    def document(self) -> dict[str, Any]:
        return json.loads(self.encoded())  # type: ignore[no-any-return]

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = json.dumps(build_document(self._methods, self._comments())).encode()
        return self._encoded
