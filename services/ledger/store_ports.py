"""Small store Protocols the ledger's use cases compose their store ports from (Formance style: use cases name
only what they need from the storage layer; ``store.LedgerPostgresStore`` implements all of them)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

import asyncpg

from services.ledger.domain_accounts import Account
from services.ledger.domain_reversals import ReversalTotals
from services.ledger.store_accounts import ClaimedRequest


class AccountReader(Protocol):
    async def get_account(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
    ) -> Account | None: ...


class RequestClaims(Protocol):
    """Idempotency of request-id verbs: the first claim of a request id wins, a replay gets the stored claim."""

    async def claim_request(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        request_id: uuid.UUID,
        claim: ClaimedRequest,
        now: dt.datetime,
    ) -> ClaimedRequest | None: ...


class AuditWriter(Protocol):
    async def insert_audit_event(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        audit_event_id: uuid.UUID,
        method: str,
        actor_principal_id: str,
        resource_id: str,
        request_id: str,
        trace_id: str,
        details: Mapping[str, str],
        occurred_at: dt.datetime,
    ) -> None: ...


class ReversalReader(Protocol):
    """The sums of originals' reversals: what their reads show as ``reversed_amount``."""

    async def reversal_totals(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, original_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ReversalTotals]: ...


class ExportAudits(Protocol):
    """Exports are audited once: a lock per export id, and the details recorded when it was audited."""

    async def lock_export(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, export_id: uuid.UUID
    ) -> None: ...
    async def export_audit_details(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, export_id: uuid.UUID, method: str
    ) -> dict[str, str] | None: ...
