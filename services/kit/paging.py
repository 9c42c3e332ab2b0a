"""AIP-158 paging: page-size rules and opaque page tokens bound to the request's filters.

A token is ``base64url(json{"v": 1, "f": <filter digest>, "c": <cursor>})``. The cursor is the keyset position
(e.g. the last row's ``(created_at, id)``); the filter digest makes a token issued for one set of filters
``INVALID_ARGUMENT`` (reason ``PAGE_TOKEN_INVALID``) when replayed with another. Tokens are not secret: queries are
always scoped to the caller's tenant, so a forged cursor can only skip ahead inside what the caller may see.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from services.kit.errors import FieldViolation, InvalidArgument

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
PAGE_TOKEN_VERSION = 1
PAGE_TOKEN_MAX_BYTES = 1024

RowT = TypeVar("RowT")


class PageTokenInvalid(InvalidArgument):
    reason = "PAGE_TOKEN_INVALID"


def page_size(requested: int) -> int:
    """0 → default, above the max → clamped, negative → INVALID_ARGUMENT."""
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            field_violations=[FieldViolation("page_size", "must be 0 (default) or positive")],
        )
    if requested == 0:
        return PAGE_SIZE_DEFAULT
    return min(requested, PAGE_SIZE_MAX)


def filter_digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(cursor: Mapping[str, Any], filters: Mapping[str, Any]) -> str:
    body = json.dumps(
        {"v": PAGE_TOKEN_VERSION, "f": filter_digest(filters), "c": dict(cursor)}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _invalid(description: str) -> PageTokenInvalid:
    return PageTokenInvalid(
        f"page_token is invalid: {description}", field_violations=[FieldViolation("page_token", description)]
    )


def decode_page_token(token: str, filters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cursor of a token from ``encode_page_token`` with the same filters; None for an empty token."""
    if token == "":
        return None
    if len(token) > PAGE_TOKEN_MAX_BYTES:
        raise _invalid("too long")
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid("not a token this service issued") from None
    if not isinstance(body, dict) or body.get("v") != PAGE_TOKEN_VERSION or not isinstance(body.get("c"), dict):
        raise _invalid("not a token this service issued")
    if body.get("f") != filter_digest(filters):
        raise _invalid("issued for different filters")
    cursor: dict[str, Any] = body["c"]
    return cursor


def next_page(
    rows: Sequence[RowT], size: int, cursor_of: Callable[[RowT], Mapping[str, Any]], filters: Mapping[str, Any]
) -> tuple[list[RowT], str]:
    """The page and the next page's token, from rows fetched with ``limit=size + 1``.

    The one extra row tells whether another page exists without a COUNT; the cursor is taken from the last row
    that is returned, so the next page starts right after it. An empty token means this is the last page.
    """
    if len(rows) <= size:
        return list(rows), ""
    page = list(rows[:size])
    return page, encode_page_token(cursor_of(page[-1]), filters)
