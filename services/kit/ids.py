"""Identifiers: UUIDv7 for things we create (time-ordered, so primary keys stay append-mostly), and parsing of
client-supplied UUIDs with a field violation instead of a crash.

Both return asyncpg's ``UUID``: a ``uuid.UUID`` subclass written in C (equal to, hashing and ordering like the
standard one), the type asyncpg already returns for every uuid column. Its parsing, ``str``, ``hash`` and ``bytes``
cost a fifth to a tenth of the standard class's, and a hot path such as a batch of transfers does each of them tens
of times per item (dictionary keys, responses, events, the hash chain's encoding, query parameters)."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable

from asyncpg.pgproto import pgproto

from services.kit.errors import FieldViolation

_UUID_VERSION_7 = 7
# asyncpg's C UUID (see the module docstring); built from 16 bytes or a 32..36-character hex string.
_FastUUID: Callable[[str | bytes], uuid.UUID] = pgproto.UUID
# The canonical 8-4-4-4-12 form (either case): what ``str(uuid.UUID(value)) == value.lower()`` accepts.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def uuid7(now_ms: int | None = None, random_bytes: bytes | None = None) -> uuid.UUID:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, version, 74 random bits, variant."""
    timestamp_ms = int(time.time() * 1000) if now_ms is None else now_ms
    assert 0 <= timestamp_ms < 1 << 48
    rand = os.urandom(10) if random_bytes is None else random_bytes
    assert len(rand) == 10
    value = timestamp_ms << 80
    value |= _UUID_VERSION_7 << 76
    value |= (int.from_bytes(rand[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(rand[2:], "big") & ((1 << 62) - 1)
    return _FastUUID(value.to_bytes(16, "big"))


def parse_uuid(
    value: str, field: str, violations: list[FieldViolation], *, required: bool = True
) -> uuid.UUID | None:
    """Parses a canonical UUID; appends a violation (and returns None) when it is missing or malformed."""
    if value == "":
        if required:
            violations.append(FieldViolation(field, "is required"))
        return None
    if _CANONICAL_UUID.fullmatch(value) is not None:
        return _FastUUID(value)  # the common case, checked without formatting the UUID back
    try:
        uuid.UUID(value)
    except ValueError:
        violations.append(FieldViolation(field, "must be a UUID"))
        return None
    violations.append(FieldViolation(field, "must be a UUID in canonical 8-4-4-4-12 form"))
    return None


def fast_uuid(value: uuid.UUID) -> uuid.UUID:
    """The same UUID as the fast (C) class, for one parsed elsewhere that is used as a key many times over."""
    return _FastUUID(value.bytes)
