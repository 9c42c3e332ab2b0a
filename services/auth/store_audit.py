"""SQL for the append-only audit table (its outbox rows are written by the kit's ``enqueue`` in the same
transaction)."""

from __future__ import annotations

import json
import uuid

import asyncpg

from services.auth.domain_records import AuditRecord
from services.auth.store_rows import seconds, ts
from services.kit import outbox
from wallet.common.v1 import events_pb2

# The event type of an audit-trail export (the enum value name without its prefix, as the table stores types).
AUDIT_EVENTS_EXPORTED = "AUDIT_EVENTS_EXPORTED"


class AuditQueries:
    _connection: asyncpg.Connection

    async def insert_audit(self, record: AuditRecord, stream: str, envelope: events_pb2.EventEnvelope) -> None:
        await self._connection.execute(
            "INSERT INTO audit_events (audit_event_id, organization_id, event_type, principal_id, "
            "actor_principal_id, source_ip, trace_id, details, occurred_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
            uuid.UUID(record.audit_event_id),
            uuid.UUID(record.organization_id),
            record.event_type,
            record.principal_id,
            record.actor_principal_id,
            record.source_ip,
            record.trace_id,
            json.dumps(record.details),
            ts(record.occurred_at),
        )
        await outbox.enqueue(self._connection, stream, envelope)

    async def exported_audit_filters(self, organization_id: str, export_id: str) -> dict[str, str] | None:
        """The filters recorded when the audit trail was first read under ``export_id`` (locked per export, so two
        concurrent first pages record it once); None when it never was."""
        await self._connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 11))",
            f"auth.export|{organization_id}|{export_id}",
        )
        raw = await self._connection.fetchval(
            "SELECT details FROM audit_events WHERE organization_id = $1 AND event_type = $2 "
            "AND details->>'export_id' = $3 ORDER BY audit_event_id LIMIT 1",
            uuid.UUID(organization_id),
            AUDIT_EVENTS_EXPORTED,
            export_id,
        )
        if raw is None:
            return None
        details: dict[str, str] = json.loads(raw)
        prefix = "filters."
        return {key.removeprefix(prefix): value for key, value in details.items() if key.startswith(prefix)}

    async def list_audit(
        self,
        organization_id: str,
        *,
        principal_id: str | None,
        event_type: str | None,
        start_s: float | None,
        end_s: float | None,
        before_id: str | None,
        limit: int,
    ) -> list[AuditRecord]:
        rows = await self._connection.fetch(
            "SELECT * FROM audit_events WHERE organization_id = $1 AND ($2::text IS NULL OR principal_id = $2) "
            "AND ($3::text IS NULL OR event_type = $3) AND ($4::timestamptz IS NULL OR occurred_at >= $4) "
            "AND ($5::timestamptz IS NULL OR occurred_at < $5) AND ($6::uuid IS NULL OR audit_event_id < $6) "
            "ORDER BY audit_event_id DESC LIMIT $7",
            uuid.UUID(organization_id),
            principal_id,
            event_type,
            None if start_s is None else ts(start_s),
            None if end_s is None else ts(end_s),
            None if before_id is None else uuid.UUID(before_id),
            limit,
        )
        return [
            AuditRecord(
                audit_event_id=str(row["audit_event_id"]),
                organization_id=str(row["organization_id"]),
                event_type=row["event_type"],
                principal_id=row["principal_id"],
                actor_principal_id=row["actor_principal_id"],
                source_ip=row["source_ip"],
                trace_id=row["trace_id"],
                occurred_at=seconds(row["occurred_at"]),
                details=json.loads(row["details"]),
            )
            for row in rows
        ]
