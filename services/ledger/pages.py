"""Paging helpers of the ledger's use cases: a page of results, and the kit's page-size rule collecting violations
instead of raising at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.kit import paging
from services.kit.errors import FieldViolation, InvalidArgument

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def checked_page_size(requested: int, violations: list[FieldViolation]) -> int:
    try:
        return paging.page_size(requested)
    except InvalidArgument as err:
        violations.extend(err.field_violations)
        return paging.PAGE_SIZE_DEFAULT


def cursor_uuid(cursor: dict[str, object] | None, key: str) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(str(cursor[key]))
    except (KeyError, ValueError):
        raise paging.PageTokenInvalid(
            "page_token is invalid", field_violations=[FieldViolation("page_token", "malformed cursor")]
        ) from None
