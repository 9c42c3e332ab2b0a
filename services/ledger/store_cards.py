"""SQL for virtual cards and the card payments (authorization holds) they made."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from services.ledger.domain_cards import Card, CardLimits, CardStatus
from services.ledger.domain_transfers import HOLD_STATUSES, TransferStatus

_COLUMNS = """organization_id, card_id, account_id, customer_id, currency, status, last_four, expiry_month,
    expiry_year, card_secret_id, per_transaction_limit_minor, daily_limit_minor, label, created_at, updated_at,
    closed_at"""
_HOLD_STATUSES = ", ".join(str(int(s)) for s in sorted(HOLD_STATUSES))
# What the card's payments authorized on one day still count for: the captured part of a posted one, the whole of an
# open one, nothing of a voided or expired one. Correlated on ``cards c``; the day is the query's parameter ``day``.
_SPENT_ON = f"""(SELECT COALESCE(SUM(CASE WHEN t.status = {int(TransferStatus.POSTED)} THEN t.posted_amount_minor
                                   WHEN t.status IN ({_HOLD_STATUSES}) THEN p.amount_minor ELSE 0 END), 0)::bigint
        FROM card_payments p JOIN transfers t USING (organization_id, transfer_id)
        WHERE p.organization_id = c.organization_id AND p.card_id = c.card_id AND p.authorized_day = {{day}})"""  # noqa: S608 -- constant fragments


def card_from_row(row: Mapping[str, Any]) -> Card:
    return Card(
        organization_id=row["organization_id"],
        card_id=row["card_id"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        currency=row["currency"],
        status=CardStatus(row["status"]),
        last_four=row["last_four"],
        expiry_month=row["expiry_month"],
        expiry_year=row["expiry_year"],
        card_secret_id=row["card_secret_id"],
        limits=CardLimits(row["per_transaction_limit_minor"], row["daily_limit_minor"]),
        daily_spent_minor=row["daily_spent_minor"],
        label=row["label"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
    )


class CardStore:
    async def insert_card(self, connection: asyncpg.Connection, card: Card) -> bool:
        """False when a card with this id exists already (nothing written)."""
        status = await connection.execute(
            f"""INSERT INTO cards ({_COLUMNS}) VALUES
                ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                ON CONFLICT (organization_id, card_id) DO NOTHING""",  # noqa: S608 -- constant fragments
            card.organization_id,
            card.card_id,
            card.account_id,
            card.customer_id,
            card.currency,
            int(card.status),
            card.last_four,
            card.expiry_month,
            card.expiry_year,
            card.card_secret_id,
            card.limits.per_transaction_minor,
            card.limits.daily_minor,
            card.label,
            card.created_at,
            card.updated_at,
            card.closed_at,
        )
        return bool(status == "INSERT 0 1")

    async def get_card(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        card_id: uuid.UUID,
        *,
        day: dt.date,
        lock: bool = False,
    ) -> Card | None:
        """The card with what it authorized on ``day``. With ``lock``, that figure is read in a second statement
        once the row lock is held: a locking SELECT that waited re-reads the card row but not its subquery's
        snapshot, so it would miss the payments the lock holder just committed."""
        if lock:
            locked = await connection.fetchval(
                "SELECT card_id FROM cards WHERE organization_id = $1 AND card_id = $2 FOR UPDATE",
                organization_id,
                card_id,
            )
            if locked is None:
                return None
        row = await connection.fetchrow(
            f"""SELECT {_COLUMNS}, {_SPENT_ON.format(day="$3")} AS daily_spent_minor
                FROM cards c WHERE organization_id = $1 AND card_id = $2""",  # noqa: S608 -- constant fragments
            organization_id,
            card_id,
            day,
        )
        return None if row is None else card_from_row(row)

    async def save_card(self, connection: asyncpg.Connection, card: Card) -> None:
        await connection.execute(
            """UPDATE cards SET status = $3, per_transaction_limit_minor = $4, daily_limit_minor = $5, updated_at = $6,
                   closed_at = $7
               WHERE organization_id = $1 AND card_id = $2""",
            card.organization_id,
            card.card_id,
            int(card.status),
            card.limits.per_transaction_minor,
            card.limits.daily_minor,
            card.updated_at,
            card.closed_at,
        )

    async def insert_card_payment(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        transfer_id: uuid.UUID,
        card_id: uuid.UUID,
        authorized_day: dt.date,
        amount_minor: int,
    ) -> None:
        await connection.execute(
            """INSERT INTO card_payments (organization_id, transfer_id, card_id, authorized_day, amount_minor)
               VALUES ($1, $2, $3, $4, $5)""",
            organization_id,
            transfer_id,
            card_id,
            authorized_day,
            amount_minor,
        )

    async def get_card_payment(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> tuple[uuid.UUID, dt.date, int] | None:
        row = await connection.fetchrow(
            """SELECT card_id, authorized_day, amount_minor FROM card_payments
               WHERE organization_id = $1 AND transfer_id = $2""",
            organization_id,
            transfer_id,
        )
        return None if row is None else (row["card_id"], row["authorized_day"], row["amount_minor"])

    async def list_cards(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        account_id: uuid.UUID | None,
        status: int,
        after_card_id: uuid.UUID | None,
        limit: int,
        day: dt.date,
    ) -> list[Card]:
        """Keyset by card id: over ``cards_by_account`` with an account, else over the primary key."""
        rows = await connection.fetch(
            f"""SELECT {_COLUMNS}, {_SPENT_ON.format(day="$6")} AS daily_spent_minor FROM cards c
                WHERE organization_id = $1 AND ($2::uuid IS NULL OR account_id = $2)
                  AND ($3::smallint = 0 OR status = $3) AND card_id > $4
                ORDER BY card_id LIMIT $5""",  # noqa: S608 -- constant fragments
            organization_id,
            account_id,
            status,
            after_card_id or uuid.UUID(int=0),
            limit,
            day,
        )
        return [card_from_row(r) for r in rows]
