"""SQL for transfers, postings, statements and holds. Bulk writes use array parameters (one round trip per table
per group commit). Every list is keyset-paginated over an index that starts with organization_id."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ledger.domain_transfers import (
    NO_RISK_RECORD,
    EntrySide,
    Posting,
    RiskCheck,
    RiskDecision,
    RiskRecord,
    Transfer,
    TransferKind,
    TransferStatus,
    VoidReason,
)

TransferKey = tuple[uuid.UUID, uuid.UUID]

_TRANSFER_COLUMNS = """organization_id, transfer_id, debit_account_id, credit_account_id, currency, amount_minor,
    kind, status, reference, pending, hold_timeout_ms, posted_amount_minor, hold_expires_at, void_reason, batch_id,
    exchange_id, created_by_principal_id, finalize_request_id, sequence, created_at, posted_at, finalized_at,
    risk_check, risk_decision, risk_score, risk_reason_codes, risk_rules_version, risk_case_id,
    reversal_of_transfer_id"""


def transfer_from_row(row: Mapping[str, Any]) -> Transfer:
    return Transfer(
        organization_id=row["organization_id"],
        transfer_id=row["transfer_id"],
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        currency=row["currency"],
        amount_minor=row["amount_minor"],
        kind=TransferKind(row["kind"]),
        status=TransferStatus(row["status"]),
        reference=row["reference"],
        pending=row["pending"],
        hold_timeout_ms=row["hold_timeout_ms"],
        posted_amount_minor=row["posted_amount_minor"],
        hold_expires_at=row["hold_expires_at"],
        void_reason=VoidReason(row["void_reason"]),
        batch_id=row["batch_id"],
        exchange_id=row["exchange_id"],
        created_by_principal_id=row["created_by_principal_id"],
        finalize_request_id=row["finalize_request_id"],
        sequence=row["sequence"],
        created_at=row["created_at"],
        posted_at=row["posted_at"],
        finalized_at=row["finalized_at"],
        risk=_risk_from_row(row),
        reversal_of_transfer_id=row["reversal_of_transfer_id"],
    )


def _risk_from_row(row: Mapping[str, Any]) -> RiskRecord:
    if row["risk_check"] == 0:
        return NO_RISK_RECORD
    codes = row["risk_reason_codes"]
    return RiskRecord(
        check=RiskCheck(row["risk_check"]),
        decision=RiskDecision(row["risk_decision"]),
        score=row["risk_score"],
        reason_codes=tuple(codes.split(" ")) if codes else (),
        rules_version=row["risk_rules_version"],
        case_id=row["risk_case_id"],
    )


@dataclass(frozen=True, slots=True)
class TransferFilter:
    account_id: uuid.UUID | None
    status: int
    kind: int
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    batch_id: uuid.UUID | None
    # Customers: only transfers touching one of these accounts (None: no restriction).
    visible_account_ids: tuple[uuid.UUID, ...] | None


@dataclass(frozen=True, slots=True)
class StatementRow:
    posting: Posting
    kind: TransferKind
    reference: str
    exchange_id: uuid.UUID | None
    sequence: int
    reversal_of_transfer_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class BalanceAt:
    posted_debits_minor: int
    posted_credits_minor: int
    pending_debits_minor: int = 0
    pending_credits_minor: int = 0


_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
_FAR_PAST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_MAX_UUID = uuid.UUID(int=(1 << 128) - 1)


# The statement page: a keyset range on the postings primary key, then the page's transfers by key.
STATEMENT_SQL = """SELECT p.organization_id, p.account_id, p.posted_at, p.account_seq, p.transfer_id, p.side,
                      p.amount_minor, p.counterparty_account_id, p.posted_debits_after, p.posted_credits_after,
                      p.sequence, t.kind, t.reference, t.exchange_id, t.reversal_of_transfer_id
               FROM (SELECT * FROM postings
                     WHERE organization_id = $1 AND account_id = $2 AND posted_at >= $3 AND posted_at < $4
                       AND (posted_at, account_seq) > ($5, $6)
                     ORDER BY posted_at, account_seq LIMIT $7) AS p
               JOIN transfers t ON t.organization_id = p.organization_id AND t.transfer_id = p.transfer_id
               ORDER BY p.posted_at, p.account_seq"""


def list_transfers_query(
    organization_id: uuid.UUID,
    filters: TransferFilter,
    before: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """Newest first. With an account filter, the debit-side and credit-side indexes are each read for at most
    ``limit`` rows and merged, so a page costs O(page) whatever the history."""
    before_time, before_id = before if before is not None else (_FAR_FUTURE, _MAX_UUID)
    start = filters.start_time or _FAR_PAST
    end = filters.end_time or _FAR_FUTURE
    extra = """AND ($6::smallint = 0 OR status = $6) AND ($7::smallint = 0 OR kind = $7)"""
    args: list[Any] = [organization_id, before_time, before_id, start, end, filters.status, filters.kind]
    window = "created_at >= $4 AND created_at < $5 AND (created_at, transfer_id) < ($2, $3)"
    if filters.account_id is not None:
        args += [filters.account_id, limit]
        sql = f"""
            SELECT * FROM (
              (SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE organization_id = $1 AND debit_account_id = $8
                 AND {window} {extra} ORDER BY created_at DESC, transfer_id DESC LIMIT $9)
              UNION ALL
              (SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE organization_id = $1 AND credit_account_id = $8
                 AND {window} {extra} ORDER BY created_at DESC, transfer_id DESC LIMIT $9)
            ) AS both_sides ORDER BY created_at DESC, transfer_id DESC LIMIT $9"""  # noqa: S608 -- only constant SQL fragments are interpolated
    elif filters.batch_id is not None:
        args += [filters.batch_id, limit]
        sql = f"""SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE organization_id = $1 AND batch_id = $8
                  AND {window} {extra} ORDER BY created_at DESC, transfer_id DESC LIMIT $9"""  # noqa: S608 -- only constant SQL fragments are interpolated
    else:
        args += [limit]
        sql = f"""SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE organization_id = $1
                  AND {window} {extra} ORDER BY created_at DESC, transfer_id DESC LIMIT $8"""  # noqa: S608 -- only constant SQL fragments are interpolated
    return sql, args


class TransferStore:
    async def find_transfers(
        self, connection: asyncpg.Connection, keys: Sequence[TransferKey]
    ) -> dict[TransferKey, Transfer]:
        if not keys:
            return {}
        rows = await connection.fetch(
            f"""SELECT {_TRANSFER_COLUMNS} FROM transfers
                WHERE (organization_id, transfer_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))""",  # noqa: S608 -- only constant SQL fragments are interpolated
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["organization_id"], r["transfer_id"]): transfer_from_row(r) for r in rows}

    async def get_transfer(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        transfer_id: uuid.UUID,
        *,
        lock: bool = False,
    ) -> Transfer | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await connection.fetchrow(
            f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE organization_id = $1 AND transfer_id = $2{suffix}",  # noqa: S608 -- constant fragments
            organization_id,
            transfer_id,
        )
        return None if row is None else transfer_from_row(row)

    async def due_holds(self, connection: asyncpg.Connection, now: dt.datetime, limit: int) -> list[TransferKey]:
        rows = await connection.fetch(
            """SELECT organization_id, transfer_id FROM transfers
               WHERE status IN (1, 6) AND hold_expires_at <= $1 ORDER BY hold_expires_at LIMIT $2""",
            now,
            limit,
        )
        return [(r["organization_id"], r["transfer_id"]) for r in rows]

    async def count_due_holds(self, connection: asyncpg.Connection, now: dt.datetime, cap: int) -> int:
        """Holds past their expiry and not finalized yet, counted up to ``cap`` (the partial index
        ``transfers_open_holds`` keeps this an index scan over the due holds only)."""
        count = await connection.fetchval(
            """SELECT count(*) FROM (SELECT 1 FROM transfers WHERE status = 1 AND hold_expires_at <= $1 LIMIT $2) due""",
            now,
            cap,
        )
        return int(count)

    async def list_transfers(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: TransferFilter,
        before: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Transfer]:
        sql, args = list_transfers_query(organization_id, filters, before, limit)
        rows = await connection.fetch(sql, *args)
        return [transfer_from_row(r) for r in rows]

    async def statement(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        account_id: uuid.UUID,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        after: tuple[dt.datetime, int] | None,
        limit: int,
    ) -> list[StatementRow]:
        """Postings in (posted_at, account_seq) order from the primary key; the page joins its transfers by key."""
        after_time, after_seq = after if after is not None else (start_time or _FAR_PAST, 0)
        rows = await connection.fetch(
            STATEMENT_SQL,
            organization_id,
            account_id,
            start_time or _FAR_PAST,
            end_time or _FAR_FUTURE,
            after_time,
            after_seq,
            limit,
        )
        return [
            StatementRow(
                posting=Posting(
                    organization_id=r["organization_id"],
                    account_id=r["account_id"],
                    posted_at=r["posted_at"],
                    account_seq=r["account_seq"],
                    transfer_id=r["transfer_id"],
                    side=EntrySide(r["side"]),
                    amount_minor=r["amount_minor"],
                    counterparty_account_id=r["counterparty_account_id"],
                    posted_debits_after=r["posted_debits_after"],
                    posted_credits_after=r["posted_credits_after"],
                ),
                kind=TransferKind(r["kind"]),
                reference=r["reference"],
                exchange_id=r["exchange_id"],
                sequence=r["sequence"],
                reversal_of_transfer_id=r["reversal_of_transfer_id"],
            )
            for r in rows
        ]

    async def pending_at(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, account_id: uuid.UUID, moment: dt.datetime
    ) -> tuple[int, int]:
        """(pending debits, pending credits) of the holds open at ``moment``: made at or before it and finalized
        (posted, voided, expired) after it or not yet. A hold reserves its whole amount until it is finalized."""
        row = await connection.fetchrow(
            """SELECT
                 (SELECT coalesce(sum(amount_minor), 0) FROM transfers
                  WHERE organization_id = $1 AND debit_account_id = $2 AND pending AND created_at <= $3
                    AND (finalized_at IS NULL OR finalized_at > $3)) AS debits,
                 (SELECT coalesce(sum(amount_minor), 0) FROM transfers
                  WHERE organization_id = $1 AND credit_account_id = $2 AND pending AND created_at <= $3
                    AND (finalized_at IS NULL OR finalized_at > $3)) AS credits""",
            organization_id,
            account_id,
            moment,
        )
        assert row is not None
        return int(row["debits"]), int(row["credits"])

    async def balance_before(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        account_id: uuid.UUID,
        moment: dt.datetime,
        *,
        inclusive: bool,
    ) -> BalanceAt:
        """Posted totals from the last posting before (or at) ``moment``: one backward index probe."""
        op = "<=" if inclusive else "<"
        row = await connection.fetchrow(
            f"""SELECT posted_debits_after, posted_credits_after FROM postings
                WHERE organization_id = $1 AND account_id = $2 AND posted_at {op} $3
                ORDER BY posted_at DESC, account_seq DESC LIMIT 1""",  # noqa: S608 -- only constant SQL fragments are interpolated
            organization_id,
            account_id,
            moment,
        )
        if row is None:
            return BalanceAt(0, 0)
        return BalanceAt(row["posted_debits_after"], row["posted_credits_after"])
