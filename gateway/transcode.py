"""JSON ⇄ proto for one HTTP binding, with the proto3 JSON mapping (``google.protobuf.json_format``).

A request message is assembled from three places, as ``google.api.http`` says: the path variables, the body
(``body: "*"`` is the whole message, ``body: "field"`` one field) and the query string for the remaining fields
(``?page_size=10&filter.status=ACCOUNT_STATUS_ACTIVE&ids=a&ids=b``; names in either spelling). Both JSON spellings are
accepted in bodies; responses use lowerCamelCase, enums as names, 64-bit integers as strings, and print fields
left at their default value so clients see ``"amountMinor": "0"`` rather than nothing.

Every problem becomes one ``InvalidArgument`` whose field violations name the offending field in its JSON spelling
(``amount.amountMinor``) without echoing the value (it may be a phone number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.catalog import HttpBinding, PublicMethod
from services.kit.errors import FieldViolation, InvalidArgument, invalid

WRONG_VALUE = "invalid value for this field's type"
UNKNOWN_FIELD = "unknown field"
# Well-known types whose JSON form is a single string or number: they can be given in a query parameter.
_SCALAR_WELL_KNOWN = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
        "google.protobuf.Int32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.BoolValue",
        "google.protobuf.FloatValue",
        "google.protobuf.DoubleValue",
    }
)
_FLOAT_TYPES = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)
_PARSE_PREFIX = re.compile(r"Failed to parse (\S+) field")
_UNKNOWN_AT = re.compile(r'has no field named "([^"]+)" at "([^"]+)"')


def _bad(field: str, description: str) -> InvalidArgument:
    return invalid([FieldViolation(field, description)])


# --- JSON bodies --------------------------------------------------------------------------------------------------


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json_body(raw: bytes, *, max_depth: int) -> Any:
    """The decoded body, or ``InvalidArgument`` naming ``*`` for malformed JSON or excessive nesting."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _bad("*", f"JSON nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, ValueError) as err:
        position = getattr(err, "pos", None)
        where = f" at byte {position}" if isinstance(position, int) else ""
        raise _bad("*", f"malformed JSON{where}") from None
    if _depth_exceeds(value, max_depth):
        raise _bad("*", f"JSON nested deeper than {max_depth} levels")
    return value


def _field_of_parse_error(message: str) -> tuple[str, str]:
    """(field path in the client's spelling, description) from a ``json_format.ParseError`` message."""
    unknown = _UNKNOWN_AT.search(message)
    if unknown is not None:
        name, at = unknown.groups()
        return ".".join([*at.split(".")[1:], name]), UNKNOWN_FIELD
    prefixes = _PARSE_PREFIX.findall(message)
    if prefixes:
        return ".".join(prefixes), WRONG_VALUE
    return "*", "request does not match the message"


def _parse_into(payload: Any, message: Message, *, reject_unknown: bool) -> None:
    if not isinstance(payload, dict):
        raise _bad("*", "expected a JSON object")
    try:
        json_format.ParseDict(payload, message, ignore_unknown_fields=not reject_unknown)
    except json_format.ParseError as err:
        field, description = _field_of_parse_error(str(err))
        field = json_path(cast(Descriptor, message.DESCRIPTOR), field) if field != "*" else field
        raise _bad(field, description) from None


# --- query parameters ---------------------------------------------------------------------------------------------


def _field_named(message: Descriptor, name: str) -> FieldDescriptor | None:
    field = message.fields_by_name.get(name)
    if field is not None:
        return field
    return next((candidate for candidate in message.fields if candidate.json_name == name), None)


def _is_query_leaf(field: FieldDescriptor) -> bool:
    if field.message_type is None:
        return True
    return field.message_type.full_name in _SCALAR_WELL_KNOWN


def _coerce(field: FieldDescriptor, value: str, name: str) -> Any:
    kind = field.type
    if field.message_type is not None and field.message_type.full_name.endswith("Value"):
        kind = field.message_type.fields_by_name["value"].type
    if kind == FieldDescriptor.TYPE_BOOL:
        if value not in ("true", "false"):
            raise _bad(name, "expected true or false")
        return value == "true"
    if kind in _FLOAT_TYPES:
        try:
            return float(value)
        except ValueError:
            raise _bad(name, WRONG_VALUE) from None
    return value


def query_payload(
    message: Descriptor, items: Iterable[tuple[str, str]], *, reject_unknown: bool, excluded: frozenset[str]
) -> dict[str, Any]:
    """Query parameters as a ``json_format`` dict keyed by proto names (``a.b=1`` → ``{"a": {"b": "1"}}``)."""
    payload: dict[str, Any] = {}
    for key, value in items:
        container = payload
        descriptor: Descriptor | None = message
        parts = key.split(".")
        for depth, part in enumerate(parts):
            field = _field_named(descriptor, part) if descriptor is not None else None
            is_last = depth == len(parts) - 1
            if field is None or (depth == 0 and field.name in excluded):
                if reject_unknown:
                    raise _bad(key, UNKNOWN_FIELD)
                break
            if not is_last:
                if field.message_type is None or _is_query_leaf(field) or _is_repeated(field):
                    raise _bad(key, "not a message field; cannot be given with a dotted name")
                container = container.setdefault(field.name, {})
                descriptor = field.message_type
                continue
            if not _is_query_leaf(field) or _is_map(field):
                raise _bad(key, "a message field cannot be given as a query parameter")
            coerced = _coerce(field, value, key)
            if _is_repeated(field):
                container.setdefault(field.name, []).append(coerced)
            elif field.name in container:
                raise _bad(json_path(message, key), "given more than once")
            else:
                container[field.name] = coerced
    return payload


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    return _is_repeated(field) and field.message_type is not None and field.message_type.GetOptions().map_entry


# --- path variables and the idempotency key -----------------------------------------------------------------------


def json_path(message: Descriptor, field_path: str) -> str:
    """``amount.amount_minor`` → ``amount.amountMinor`` (the spelling clients use)."""
    names: list[str] = []
    descriptor: Descriptor | None = message
    for part in field_path.split("."):
        field = _field_named(descriptor, part) if descriptor is not None else None
        names.append(field.json_name if field is not None else part)
        descriptor = field.message_type if field is not None else None
    return ".".join(names)


def set_string_path(request: Message, field_path: str, value: str, *, source: str) -> None:
    """Sets a (possibly nested) scalar field from a path variable or header. A different value already given in the
    body is a conflict; the same value, or none, is fine."""
    parts = field_path.split(".")
    target = request
    for part in parts[:-1]:
        target = getattr(target, part)
    field: FieldDescriptor = cast(Descriptor, target.DESCRIPTOR).fields_by_name[parts[-1]]
    shown = json_path(cast(Descriptor, request.DESCRIPTOR), field_path)
    if _is_repeated(field) or field.message_type is not None:
        raise _bad(shown, f"cannot be set from the {source}")
    try:
        converted = _scalar_from_string(field, value)
    except ValueError:
        raise _bad(shown, WRONG_VALUE) from None
    current = getattr(target, parts[-1])
    if current not in ("", 0, False, b"") and current != converted:
        raise _bad(shown, f"differs between the body and the {source}")
    setattr(target, parts[-1], converted)


def _scalar_from_string(field: FieldDescriptor, value: str) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return value
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value not in ("true", "false"):
            raise ValueError(value)
        return value == "true"
    if field.type in _FLOAT_TYPES:
        return float(value)
    if field.enum_type is not None:
        enum_value = field.enum_type.values_by_name.get(value)
        if enum_value is None:
            raise ValueError(value)
        return enum_value.number
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.encode()
    return int(value)


IDEMPOTENCY_FIELD = "request_id"
_MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _response_names(message: Descriptor) -> set[str]:
    names = {field.name for field in message.fields}
    for field in message.fields:
        if field.message_type is not None:
            names.update(inner.name for inner in field.message_type.fields)
    return names


def idempotency_field(method: PublicMethod, binding: HttpBinding) -> str | None:
    """Where ``Idempotency-Key`` goes (docs/decisions.md "Idempotency"): the request's ``request_id``, else a create's
    client-chosen resource id: field 1, a string ``*_id`` not bound by the path that the response gives back (the
    created resource carries it; a challenge or ceremony id that is only consumed does not). None when the call has
    neither: the header is then ignored, as for login and refresh, which are single-use by nature."""
    if binding.verb not in _MUTATING_VERBS:
        return None
    message = method.descriptor.input_type
    if IDEMPOTENCY_FIELD in message.fields_by_name:
        return IDEMPOTENCY_FIELD
    first = message.fields_by_number.get(1)
    if (
        first is not None
        and first.type == FieldDescriptor.TYPE_STRING
        and not _is_repeated(first)
        and first.name.endswith("_id")
        and first.name not in binding.template.variables
        and first.name in _response_names(method.descriptor.output_type)
    ):
        return first.name
    return None


# --- the whole request and the response ---------------------------------------------------------------------------


def build_request(
    method: PublicMethod,
    binding: HttpBinding,
    *,
    path_variables: dict[str, str],
    query: Sequence[tuple[str, str]],
    body: Any,
    reject_unknown: bool,
) -> Message:
    """The request message; ``body`` is the decoded JSON body (None when there was none)."""
    message = method.descriptor.input_type
    request = method.request_class()
    bound_by_path = frozenset(variable.split(".")[0] for variable in binding.template.variables)
    if binding.body == "*":
        if query and reject_unknown:
            raise _bad(query[0][0], "this operation takes its fields in the body, not the query")
        _parse_into({} if body is None else body, request, reject_unknown=reject_unknown)
    else:
        excluded = bound_by_path | ({binding.body} if binding.body else frozenset())
        payload = query_payload(message, query, reject_unknown=reject_unknown, excluded=excluded)
        if binding.body and body is not None:
            payload[binding.body] = body
        _parse_into(payload, request, reject_unknown=reject_unknown)
    for variable, value in path_variables.items():
        set_string_path(request, variable, value, source="path")
    return request


def render_response(response: Message, response_body: str) -> bytes:
    rendered: Any = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    if response_body:
        field = response.DESCRIPTOR.fields_by_name[response_body]
        rendered = rendered.get(field.json_name)
    return json.dumps(rendered, separators=(",", ":"), ensure_ascii=False).encode()
