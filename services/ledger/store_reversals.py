"""SQL for reversals: the record of each ReverseTransfer call and the per-original sums of its reversals (read through
the partial index ``transfers_by_reversed``, so the cost is O(the original's reversals), not O(transfers))."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg

from services.ledger.domain_reversals import NO_REVERSALS, ReversalReason, ReversalRecord, ReversalTotals

# Reversals that posted or still reserve their amount (PENDING, POSTED, AWAITING_APPROVAL, AWAITING_REVIEW).
_RESERVING_STATUSES = [1, 2, 5, 6]
_POSTED_STATUS = 2

REVERSAL_TOTALS_SQL = """
SELECT reversal_of_transfer_id AS original,
       coalesce(sum(amount_minor) FILTER (WHERE status = ANY($3::smallint[])), 0) AS reserved,
       coalesce(sum(posted_amount_minor) FILTER (WHERE status = $4), 0) AS reversed
FROM transfers
WHERE organization_id = $1 AND reversal_of_transfer_id = ANY($2::uuid[])
GROUP BY reversal_of_transfer_id"""


class ReversalStore:
    async def reversal_totals(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, original_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ReversalTotals]:
        """The sums of each original's reversals; originals without any are absent (``NO_REVERSALS``)."""
        if not original_ids:
            return {}
        rows = await connection.fetch(
            REVERSAL_TOTALS_SQL, organization_id, list(original_ids), _RESERVING_STATUSES, _POSTED_STATUS
        )
        return {r["original"]: ReversalTotals(int(r["reserved"]), int(r["reversed"])) for r in rows}

    async def reversal_totals_of(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, original_id: uuid.UUID
    ) -> ReversalTotals:
        totals = await self.reversal_totals(connection, organization_id, [original_id])
        return totals.get(original_id, NO_REVERSALS)

    async def insert_reversal(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ReversalRecord, now: dt.datetime
    ) -> None:
        assert connection.is_in_transaction(), "written in the transaction that commits the reversal transfer"
        await connection.execute(
            """INSERT INTO transfer_reversals (organization_id, transfer_id, original_transfer_id, reason,
                   complaint_id, requested_amount_minor, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            organization_id,
            record.transfer_id,
            record.original_transfer_id,
            int(record.reason),
            record.complaint_id,
            record.requested_amount_minor,
            now,
        )

    async def get_reversal(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> ReversalRecord | None:
        row = await connection.fetchrow(
            """SELECT transfer_id, original_transfer_id, reason, complaint_id, requested_amount_minor
               FROM transfer_reversals WHERE organization_id = $1 AND transfer_id = $2""",
            organization_id,
            transfer_id,
        )
        if row is None:
            return None
        return ReversalRecord(
            transfer_id=row["transfer_id"],
            original_transfer_id=row["original_transfer_id"],
            reason=ReversalReason(row["reason"]),
            complaint_id=row["complaint_id"],
            requested_amount_minor=row["requested_amount_minor"],
        )
