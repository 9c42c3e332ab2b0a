"""The ledger's Postgres store: one object implementing ``service.LedgerStore``, assembled from the per-concept
modules (``store_accounts``, ``store_transfers``, ``store_chain``) plus batches."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from services.ledger.store_accounts import AccountStore, AuditStore
from services.ledger.store_approvals import ApprovalStore
from services.ledger.store_cards import CardStore
from services.ledger.store_chain import ChainStore
from services.ledger.store_commit import CommitWriteStore
from services.ledger.store_exports import ExportStore
from services.ledger.store_fx import FxStore
from services.ledger.store_invariants import InvariantStore
from services.ledger.store_invoices import InvoiceStore
from services.ledger.store_loyalty import LoyaltyStore
from services.ledger.store_reversals import ReversalStore
from services.ledger.store_transfer_links import TransferLinkStore
from services.ledger.store_transfers import TransferStore


class PostgresLedgerStore(
    AccountStore,
    AuditStore,
    TransferStore,
    ChainStore,
    CommitWriteStore,
    InvariantStore,
    FxStore,
    InvoiceStore,
    ApprovalStore,
    LoyaltyStore,
    CardStore,
    ReversalStore,
    TransferLinkStore,
    ExportStore,
):
    async def find_batch(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, batch_id: uuid.UUID
    ) -> tuple[str, list[dict[str, str]]] | None:
        row = await connection.fetchrow(
            "SELECT fingerprint, results FROM transfer_batches WHERE organization_id = $1 AND batch_id = $2",
            organization_id,
            batch_id,
        )
        if row is None:
            return None
        results: list[dict[str, str]] = json.loads(row["results"])
        return row["fingerprint"], results

    async def insert_batch(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        batch_id: uuid.UUID,
        fingerprint: str,
        results: list[dict[str, str]],
        now: dt.datetime,
    ) -> None:
        await connection.execute(
            """INSERT INTO transfer_batches (organization_id, batch_id, fingerprint, results, created_at)
               VALUES ($1, $2, $3, $4::jsonb, $5)""",
            organization_id,
            batch_id,
            fingerprint,
            json.dumps(results),
            now,
        )
