"""SQL of compliance exports: a tenant's transfers of a period, oldest first, with both accounts' kind and customer
(keyset on ``(created_at, transfer_id)`` over ``transfers_by_time``), and the audit record of an export."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from services.ledger.domain_exports import ExportRow


class ExportStore:
    async def export_rows(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        start_time: dt.datetime,
        end_time: dt.datetime,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ExportRow]:
        after_time, after_id = after if after is not None else (None, None)
        rows = await connection.fetch(
            """SELECT t.transfer_id, t.debit_account_id, t.credit_account_id, t.currency, t.amount_minor,
                      t.posted_amount_minor, t.kind, t.status, t.risk_decision, t.created_at, t.posted_at,
                      t.reversal_of_transfer_id,
                      d.customer_id AS debit_customer_id, d.kind AS debit_kind,
                      c.customer_id AS credit_customer_id, c.kind AS credit_kind
                 FROM transfers t
                 JOIN accounts d ON d.organization_id = t.organization_id AND d.account_id = t.debit_account_id
                 JOIN accounts c ON c.organization_id = t.organization_id AND c.account_id = t.credit_account_id
                WHERE t.organization_id = $1 AND t.created_at >= $2 AND t.created_at < $3
                  AND ($4::timestamptz IS NULL OR (t.created_at, t.transfer_id) > ($4, $5::uuid))
                ORDER BY t.created_at, t.transfer_id
                LIMIT $6""",
            organization_id,
            start_time,
            end_time,
            after_time,
            after_id,
            limit,
        )
        return [
            ExportRow(
                transfer_id=row["transfer_id"],
                debit_account_id=row["debit_account_id"],
                credit_account_id=row["credit_account_id"],
                debit_customer_id=row["debit_customer_id"],
                credit_customer_id=row["credit_customer_id"],
                debit_account_kind=row["debit_kind"],
                credit_account_kind=row["credit_kind"],
                currency=row["currency"],
                amount_minor=row["amount_minor"],
                posted_amount_minor=row["posted_amount_minor"],
                kind=row["kind"],
                status=row["status"],
                reversal_of_transfer_id=row["reversal_of_transfer_id"],
                risk_decision=row["risk_decision"],
                created_at=row["created_at"],
                posted_at=row["posted_at"],
            )
            for row in rows
        ]

    async def lock_export(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, export_id: uuid.UUID
    ) -> None:
        """Serializes first pages of one export, so two concurrent ones audit it once (transaction-scoped)."""
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))",
            f"ledger.export|{organization_id}|{export_id}",
        )

    async def export_audit_details(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, export_id: uuid.UUID, method: str
    ) -> dict[str, str] | None:
        """The details recorded when the export (of ``method``'s records) was audited; None when it never was."""
        raw = await connection.fetchval(
            """SELECT details FROM audit_events
                WHERE organization_id = $1 AND resource_id = $2 AND method = $3
                ORDER BY audit_event_id LIMIT 1""",
            organization_id,
            str(export_id),
            method,
        )
        if raw is None:
            return None
        details: dict[str, str] = json.loads(raw)
        return details
