"""ExportTransactions: a pseudonymized, keyset-paginated transaction export for analysts and auditors, audited once
on its first page (who, the period, the key's name — never the key)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, Unavailable, first_differing_field, invalid
from services.ledger.caller import Caller
from services.ledger.commit import Clock
from services.ledger.domain_exports import (
    EXPORT_METHOD,
    ExportedTransfer,
    ExportQuery,
    ExportRow,
    exported,
    parse_export_query,
)
from services.ledger.export_keys import CURSOR_NONCE_BYTES, ExportKeys
from services.ledger.pages import Page, checked_page_size
from services.ledger.service import record_audit
from services.ledger.store_ports import AuditWriter, ExportAudits


class ExportsNotConfigured(Unavailable):
    def __init__(self) -> None:
        super().__init__("transaction exports are not configured on this ledger (LEDGER_EXPORT_PSEUDONYM_KEY)")


class AuditedExports(ExportAudits, AuditWriter, Protocol):
    """What auditing an export once needs."""


class ExportStore(AuditedExports, Protocol):
    async def export_rows(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        start_time: dt.datetime,
        end_time: dt.datetime,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ExportRow]: ...


async def audit_export_once(
    store: AuditedExports,
    connection: asyncpg.Connection,
    caller: Caller,
    method: str,
    export_id: uuid.UUID,
    details: Mapping[str, str],
    now: dt.datetime,
) -> None:
    """Audits an export of ``method``'s records once, in the caller's transaction: a retried first page finds the
    record and replays; the same export id with other details is ``IDEMPOTENCY_KEY_REUSED``."""
    await store.lock_export(connection, caller.organization_id, export_id)
    recorded = await store.export_audit_details(connection, caller.organization_id, export_id, method)
    if recorded is None:
        await record_audit(store, connection, caller, method, str(export_id), str(export_id), details, now)
        return
    differing = first_differing_field((name, details[name], recorded.get(name)) for name in details)
    if differing is not None:
        raise IdempotencyKeyReused("export_id", differing)


def _cursor_invalid() -> paging.PageTokenInvalid:
    return paging.PageTokenInvalid(
        "page_token is invalid: not issued for this export",
        field_violations=[FieldViolation("page_token", "not issued for this export")],
    )


class ExportService:
    def __init__(self, pool: asyncpg.Pool, store: ExportStore, clock: Clock, keys: ExportKeys | None) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._keys = keys

    async def export_transactions(
        self,
        caller: Caller,
        *,
        export_id: str,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        pseudonym_key_id: str,
        page_size: int,
        page_token: str,
    ) -> Page[ExportedTransfer]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        query = parse_export_query(export_id, start_time, end_time, pseudonym_key_id, violations)
        if violations:
            raise invalid(violations)
        assert query is not None
        if self._keys is None:
            raise ExportsNotConfigured()
        org = caller.organization_id
        export_key = self._keys.export_key(org, query.export_id, query.key_name)
        if export_key is None:
            raise invalid([FieldViolation("pseudonym_key_id", "is not a configured export key")])
        filters = query.filter_key()
        cursor = paging.decode_page_token(page_token, filters)
        if cursor is None:
            rows = await self._first_page(caller, query, size + 1)
        else:
            after = self._opened_cursor(cursor, org, query)
            async with self._pool.acquire() as connection:
                rows = await self._store.export_rows(
                    connection, org, query.start_time, query.end_time, after, size + 1
                )
        page, token = paging.next_page(rows, size, lambda last: self._sealed_cursor(last, org, query), filters)
        return Page([exported(row, export_key) for row in page], token)

    async def _first_page(self, caller: Caller, query: ExportQuery, limit: int) -> list[ExportRow]:
        """Audits the export unless it already was (a retried first page replays), and reads its first rows."""
        org = caller.organization_id
        async with transaction(self._pool) as connection:
            details = query.audit_details()
            await audit_export_once(
                self._store, connection, caller, EXPORT_METHOD, query.export_id, details, self._clock()
            )
            return await self._store.export_rows(connection, org, query.start_time, query.end_time, None, limit)

    def _binding(self, organization_id: uuid.UUID, query: ExportQuery) -> bytes:
        return b"|".join((b"export-cursor", organization_id.bytes, query.export_id.bytes))

    def _sealed_cursor(self, last: ExportRow, organization_id: uuid.UUID, query: ExportQuery) -> dict[str, str]:
        assert self._keys is not None
        plaintext = json.dumps([last.created_at.isoformat(), str(last.transfer_id)]).encode()
        nonce = os.urandom(CURSOR_NONCE_BYTES)
        return {"s": self._keys.seal_cursor(plaintext, self._binding(organization_id, query), nonce)}

    def _opened_cursor(
        self, cursor: dict[str, object], organization_id: uuid.UUID, query: ExportQuery
    ) -> tuple[dt.datetime, uuid.UUID]:
        assert self._keys is not None
        sealed = cursor.get("s")
        if not isinstance(sealed, str):
            raise _cursor_invalid()
        plaintext = self._keys.open_cursor(sealed, self._binding(organization_id, query))
        if plaintext is None:
            raise _cursor_invalid()
        created_at, transfer_id = json.loads(plaintext)
        return dt.datetime.fromisoformat(created_at), uuid.UUID(transfer_id)
