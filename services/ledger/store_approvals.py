"""SQL for maker-checker: the tenant's approval policy, decisions on transfers, the pending list and the expiry
work list (transfers with status AWAITING_APPROVAL, read through their own partial indexes)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import asyncpg

from services.ledger.domain_accounts import AccountKind
from services.ledger.domain_approvals import ApprovalDecision, ApprovalPolicy, ApprovalRule
from services.ledger.domain_transfers import Transfer, TransferStatus
from services.ledger.store_transfers import transfer_from_row

_AWAITING_APPROVAL = int(TransferStatus.AWAITING_APPROVAL)
_FAR_PAST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_MIN_UUID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    transfer_id: uuid.UUID
    decision: ApprovalDecision
    decided_by_principal_id: str
    note: str
    request_id: uuid.UUID
    decided_at: dt.datetime


class ApprovalStore:
    async def get_approval_policy(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID
    ) -> ApprovalPolicy | None:
        row = await connection.fetchrow(
            "SELECT rules, updated_at, updated_by_principal_id FROM approval_policies WHERE organization_id = $1",
            organization_id,
        )
        if row is None:
            return None
        rules = tuple(ApprovalRule(AccountKind(k), c, t) for k, c, t in json.loads(row["rules"]))
        return ApprovalPolicy(rules, row["updated_at"], row["updated_by_principal_id"])

    async def save_approval_policy(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, policy: ApprovalPolicy
    ) -> None:
        await connection.execute(
            """INSERT INTO approval_policies (organization_id, rules, updated_at, updated_by_principal_id)
               VALUES ($1, $2::jsonb, $3, $4)
               ON CONFLICT (organization_id) DO UPDATE
               SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at,
                   updated_by_principal_id = EXCLUDED.updated_by_principal_id""",
            organization_id,
            json.dumps([[int(r.account_kind), r.currency, r.threshold_minor] for r in policy.rules]),
            policy.updated_at,
            policy.updated_by_principal_id,
        )

    async def get_approval(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> ApprovalRecord | None:
        row = await connection.fetchrow(
            """SELECT transfer_id, decision, decided_by_principal_id, note, request_id, decided_at
               FROM transfer_approvals WHERE organization_id = $1 AND transfer_id = $2""",
            organization_id,
            transfer_id,
        )
        if row is None:
            return None
        return ApprovalRecord(
            row["transfer_id"],
            ApprovalDecision(row["decision"]),
            row["decided_by_principal_id"],
            row["note"],
            row["request_id"],
            row["decided_at"],
        )

    async def insert_approval(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, record: ApprovalRecord
    ) -> None:
        await connection.execute(
            """INSERT INTO transfer_approvals (organization_id, transfer_id, decision, decided_by_principal_id, note,
                   request_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            organization_id,
            record.transfer_id,
            int(record.decision),
            record.decided_by_principal_id,
            record.note,
            record.request_id,
            record.decided_at,
        )

    async def list_pending_approvals(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        account_id: uuid.UUID | None,
        exclude_principal_id: str,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Transfer]:
        """Closest to expiry first, keyset on (hold_expires_at, transfer_id) over the partial index."""
        after_time, after_id = after if after is not None else (_FAR_PAST, _MIN_UUID)
        rows = await connection.fetch(
            # Whole rows: transfer_from_row reads its columns by name, so columns added to transfers later need no change.
            f"""SELECT * FROM transfers
                WHERE organization_id = $1 AND status = {_AWAITING_APPROVAL}
                  AND (hold_expires_at, transfer_id) > ($2, $3)
                  AND ($4::uuid IS NULL OR debit_account_id = $4)
                  AND ($5 = '' OR created_by_principal_id <> $5)
                ORDER BY hold_expires_at, transfer_id LIMIT $6""",  # noqa: S608 -- constant fragments
            organization_id,
            after_time,
            after_id,
            account_id,
            exclude_principal_id,
            limit,
        )
        return [transfer_from_row(r) for r in rows]

    async def due_approval_holds(
        self, connection: asyncpg.Connection, now: dt.datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await connection.fetch(
            f"""SELECT organization_id, transfer_id FROM transfers
                WHERE status = {_AWAITING_APPROVAL} AND hold_expires_at <= $1
                ORDER BY hold_expires_at LIMIT $2""",  # noqa: S608 -- constant fragments
            now,
            limit,
        )
        return [(r["organization_id"], r["transfer_id"]) for r in rows]
