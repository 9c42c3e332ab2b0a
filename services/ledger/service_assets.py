"""Tenant assets (DefineAsset, ListAssets) and the audit trail (ListAuditEvents)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock
from services.ledger.currencies import CURRENCY_CODE_PATTERN, ISO_CURRENCIES, Currency
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service import LedgerStore, utc_now
from services.ledger.service_exports import audit_export_once
from services.ledger.store_accounts import AuditEvent

# The method an audit-log export is recorded under (the ledger's audit events name methods by their short name).
AUDIT_EXPORT_METHOD = "ListAuditEvents"


class AssetService:
    def __init__(self, pool: asyncpg.Pool, store: LedgerStore, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def define_asset(
        self, caller: Caller, *, asset_code: str, scale: int, display_name: str
    ) -> tuple[Currency, dt.datetime]:
        violations: list[FieldViolation] = []
        if not CURRENCY_CODE_PATTERN.match(asset_code):
            violations.append(FieldViolation("asset_code", "must be 3 to 12 upper-case letters or digits"))
        elif asset_code in ISO_CURRENCIES:
            violations.append(FieldViolation("asset_code", "is an ISO 4217 currency code"))
        if scale < 0 or scale > limits.ASSET_SCALE_MAX:
            violations.append(FieldViolation("scale", f"must be between 0 and {limits.ASSET_SCALE_MAX}"))
        if not display_name.strip():
            violations.append(FieldViolation("display_name", "is required"))
        elif len(display_name) > limits.ASSET_DISPLAY_NAME_CHARS_MAX:
            violations.append(
                FieldViolation("display_name", f"must be at most {limits.ASSET_DISPLAY_NAME_CHARS_MAX} characters")
            )
        if violations:
            raise invalid(violations)
        wanted = Currency(asset_code, scale, display_name, iso=False)
        async with transaction(self._pool) as connection:
            stored, created_at = await self._store.insert_asset(
                connection, caller.organization_id, wanted, self._clock()
            )
        if stored.scale != wanted.scale:
            raise IdempotencyKeyReused("asset_code", "scale")
        if stored.name != wanted.name:
            raise IdempotencyKeyReused("asset_code", "display_name")
        return stored, created_at

    async def list_assets(
        self, caller: Caller, *, page_size: int, page_token: str, include_iso: bool
    ) -> Page[tuple[Currency, dt.datetime | None]]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        if violations:
            raise invalid(violations)
        filter_key = {"iso": include_iso}
        cursor = paging.decode_page_token(page_token, filter_key)
        after = str(cursor.get("c", "")) if cursor else ""
        items: list[tuple[Currency, dt.datetime | None]] = []
        if include_iso:
            items += [(c, None) for code, c in sorted(ISO_CURRENCIES.items()) if code > after][: size + 1]
        async with self._pool.acquire() as connection:
            items += list(await self._store.list_assets(connection, caller.organization_id, after, size + 1))
        items.sort(key=lambda pair: pair[0].code)
        page, token = paging.next_page(items, size, lambda last: {"c": last[0].code}, filter_key)
        return Page(page, token)

    async def list_audit_events(
        self,
        caller: Caller,
        *,
        page_size: int,
        page_token: str,
        resource_id: str,
        actor_principal_id: str,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        export_id: str = "",
    ) -> Page[AuditEvent]:
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        if start_time and end_time and end_time <= start_time:
            violations.append(FieldViolation("end_time", "must be after start_time"))
        export = parse_uuid(export_id, "export_id", violations, required=False)
        if violations:
            raise invalid(violations)
        filter_key = {"r": resource_id, "a": actor_principal_id, "from": str(start_time), "to": str(end_time)}
        if export is not None:
            filter_key["export"] = str(export)
        cursor = paging.decode_page_token(page_token, filter_key)
        before = cursor_uuid(cursor, "i")
        async with transaction(self._pool) as connection:
            if export is not None and cursor is None:
                # Read as part of an export (walletctl's audit trail): audited once, on its first page.
                details = {key: value for key, value in filter_key.items() if key != "export"}
                await audit_export_once(
                    self._store, connection, caller, AUDIT_EXPORT_METHOD, export, details, self._clock()
                )
            rows = await self._store.list_audit_events(
                connection,
                caller.organization_id,
                resource_id=resource_id,
                actor_principal_id=actor_principal_id,
                start_time=start_time,
                end_time=end_time,
                before_id=before,
                limit=size + 1,
            )
        page, token = paging.next_page(rows, size, lambda last: {"i": str(last.audit_event_id)}, filter_key)
        return Page(page, token)
