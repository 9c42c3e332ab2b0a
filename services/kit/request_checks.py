"""Checks every request once, right after decoding, for values protobuf accepts but no handler can use.

- **Time**: the wire takes any int64 seconds and int32 nanos in a ``Timestamp`` or ``Duration``, but converting an
  out-of-range one (``ToDatetime``, ``ToTimedelta``) raises ``ValueError`` deep inside a handler.
- **Enums**: proto3 enums are open, so an undeclared number decodes fine, and ``Enum.Name(value)`` then raises.
- **NUL characters** in strings: valid UTF-8, but Postgres cannot store them in ``text`` or ``jsonb``, and no
  wallet input needs one.

Both would surface as INTERNAL; the kit refuses them with INVALID_ARGUMENT naming the field, so no service has to
remember to. The fields to check are found once per message type and cached; a message type without such fields
costs one cache lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.kit.errors import FieldViolation

# The ranges the well-known types document: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, and ±10,000 years.
TIMESTAMP_SECONDS_MIN = -62_135_596_800
TIMESTAMP_SECONDS_MAX = 253_402_300_799
DURATION_SECONDS_MAX = 315_576_000_000
NANOS_MAX = 999_999_999

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
ENUM = "enum"
STRING = "string"
STRING_MAP = "string map"
NESTED = "nested"
NUL = "\x00"


@dataclass(frozen=True, slots=True)
class _Checked:
    field: FieldDescriptor
    kind: str  # TIMESTAMP, DURATION, ENUM, or NESTED for a message with such fields further down
    enum_numbers: frozenset[int] = frozenset()
    enum_name: str = ""


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


@cache
def _checked_fields(descriptor: Descriptor, strings: bool) -> dict[str, _Checked]:
    return {planned.field.name: planned for planned in _plan(descriptor, frozenset(), strings)}


def _plan(descriptor: Descriptor, visiting: frozenset[str], strings: bool) -> tuple[_Checked, ...]:
    planned = []
    for field in descriptor.fields:
        if field.enum_type is not None:
            numbers = frozenset(value.number for value in field.enum_type.values)
            planned.append(_Checked(field, ENUM, numbers, field.enum_type.name))
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            if strings:
                planned.append(_Checked(field, STRING))
            continue
        message_type = field.message_type
        if message_type is None:
            continue
        if _is_map(field):
            if strings and any(entry.type == FieldDescriptor.TYPE_STRING for entry in message_type.fields):
                planned.append(_Checked(field, STRING_MAP))
            continue
        if message_type.full_name in (TIMESTAMP, DURATION):
            planned.append(_Checked(field, message_type.full_name))
        elif message_type.full_name not in visiting and _plan(
            message_type, visiting | {descriptor.full_name}, strings
        ):
            planned.append(_Checked(field, NESTED))
    return tuple(planned)


def _valid_timestamp(seconds: int, nanos: int) -> bool:
    return TIMESTAMP_SECONDS_MIN <= seconds <= TIMESTAMP_SECONDS_MAX and 0 <= nanos <= NANOS_MAX


def _valid_duration(seconds: int, nanos: int) -> bool:
    if not -DURATION_SECONDS_MAX <= seconds <= DURATION_SECONDS_MAX or not -NANOS_MAX <= nanos <= NANOS_MAX:
        return False
    # Seconds and nanos must not have opposite signs.
    return not (seconds > 0 > nanos or seconds < 0 < nanos)


def request_violations(message: Message, prefix: str = "", *, strings: bool = True) -> list[FieldViolation]:
    """One violation per out-of-range Timestamp or Duration, undeclared enum value and string with a NUL character
    anywhere in ``message``; the fields to look at are planned once per message type. ``strings=False`` skips the
    NUL check: the caller knows the serialized message has no zero byte, so no string can hold one."""
    plan = _checked_fields(message.DESCRIPTOR, strings)
    if not plan:
        return []
    violations: list[FieldViolation] = []
    for name, planned in plan.items():
        field = planned.field
        if planned.kind == STRING_MAP:
            entries = getattr(message, name)
            if any(NUL in item for pair in entries.items() for item in pair if isinstance(item, str)):
                violations.append(FieldViolation(f"{prefix}{name}", "must not contain a NUL character"))
        elif field.is_repeated:
            for index, item in enumerate(getattr(message, name)):
                _check(planned, item, f"{prefix}{name}[{index}]", violations, strings)
        elif not field.has_presence or message.HasField(name):
            _check(planned, getattr(message, name), f"{prefix}{name}", violations, strings)
    return violations


def _check(planned: _Checked, value: Any, name: str, violations: list[FieldViolation], strings: bool) -> None:
    kind = planned.kind
    if kind == STRING:
        if NUL in value:
            violations.append(FieldViolation(name, "must not contain a NUL character"))
    elif kind == ENUM:
        if value not in planned.enum_numbers:
            violations.append(FieldViolation(name, f"is not a known {planned.enum_name} value"))
    elif kind == TIMESTAMP:
        if not _valid_timestamp(value.seconds, value.nanos):
            violations.append(FieldViolation(name, "is not a valid timestamp (years 1 to 9999)"))
    elif kind == DURATION:
        if not _valid_duration(value.seconds, value.nanos):
            violations.append(FieldViolation(name, "is not a valid duration"))
    else:
        violations.extend(request_violations(value, f"{name}.", strings=strings))
