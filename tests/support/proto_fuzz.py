"""Hostile request bytes for any method, generated from its input message descriptor (issue 12).

Three kinds, all from one seeded ``random.Random`` so a failure replays: well-formed messages with random field
values (extreme integers, out-of-range enums and timestamps, odd strings, UUID-looking ids, nested messages),
those messages truncated at a random byte, and plain random bytes. A service must answer every one with a clear
status — ``INVALID_ARGUMENT``, ``NOT_FOUND``, ``FAILED_PRECONDITION``… — and never ``INTERNAL`` or ``UNKNOWN``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

MAX_DEPTH = 3
MAX_REPEATED = 3
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1

_STRINGS = (
    "",
    " ",
    "x" * 2_000,
    "null",
    "-1",
    "99999999999999999999999",
    "1e309",
    "../../etc/passwd",
    "' OR 1=1 --",
    "\u202e\u0000\ud7ff",
    "EUR",
    "ZZZ",
    "+8613812345678",
    "2026-13-45T99:99:99Z",
    "*",
    "not-a-uuid",
)


def _integer(rng: random.Random, low: int, high: int) -> int:
    return rng.choice((0, 1, -1 if low < 0 else 2, low, high, rng.randint(low, high)))


def _scalar(field: FieldDescriptor, rng: random.Random) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice((str(uuid.uuid4()), str(uuid.uuid4()), rng.choice(_STRINGS)))
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.choice((0, 1, 16, 32, 300)))
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice((0.0, -1.0, 1e308 if kind == FieldDescriptor.TYPE_DOUBLE else 3e38, float("nan"), 0.5))
    if kind == FieldDescriptor.TYPE_ENUM:
        declared = [value.number for value in field.enum_type.values]
        return rng.choice((*declared, 9_999, -5))
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _integer(rng, -(2**63), INT64_MAX)
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _integer(rng, 0, UINT64_MAX)
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return _integer(rng, -(2**31), INT32_MAX)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _integer(rng, 0, UINT32_MAX)
    raise AssertionError(f"unhandled field type {kind} of {field.full_name}")


def _fill(message: Message, rng: random.Random, depth: int) -> None:
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.3:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            container = getattr(message, field.name)
            key_field, value_field = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            for _ in range(rng.randint(0, MAX_REPEATED)):
                key = _scalar(key_field, rng)
                if value_field.message_type is None:
                    container[key] = _scalar(value_field, rng)
                elif depth < MAX_DEPTH:
                    _fill(container[key], rng, depth + 1)
            continue
        if field.message_type is not None:
            if depth >= MAX_DEPTH:
                continue
            if field.is_repeated:
                for _ in range(rng.randint(0, MAX_REPEATED)):
                    _fill(getattr(message, field.name).add(), rng, depth + 1)
            else:
                child = getattr(message, field.name)
                child.SetInParent()
                _fill(child, rng, depth + 1)
            continue
        if field.is_repeated:
            getattr(message, field.name).extend(_scalar(field, rng) for _ in range(rng.randint(0, MAX_REPEATED)))
        else:
            setattr(message, field.name, _scalar(field, rng))


def random_message(descriptor: Descriptor, rng: random.Random) -> bytes:
    message = message_factory.GetMessageClass(descriptor)()
    _fill(message, rng, 0)
    return message.SerializeToString()


def hostile_payloads(descriptor: Descriptor, rng: random.Random, count: int) -> list[bytes]:
    """``count`` payloads: about half well-formed random messages, a quarter truncated, a quarter random bytes."""
    payloads: list[bytes] = []
    for index in range(count):
        kind = index % 4
        if kind in (0, 1):
            payloads.append(random_message(descriptor, rng))
        elif kind == 2:
            whole = random_message(descriptor, rng)
            payloads.append(whole[: rng.randint(0, max(0, len(whole) - 1))])
        else:
            payloads.append(rng.randbytes(rng.randint(1, 64)))
    return payloads
