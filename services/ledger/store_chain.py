"""SQL for the hash chain, the sealed blocks and the ledger's outbox rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ledger.chain import ChainEntry
from services.ledger.proof import GENESIS_HASH


@dataclass(frozen=True, slots=True)
class ChainHead:
    organization_id: uuid.UUID
    last_sequence: int
    last_hash: bytes
    sealed_through: int
    block_count: int


@dataclass(frozen=True, slots=True)
class Block:
    organization_id: uuid.UUID
    block_number: int
    first_sequence: int
    last_sequence: int
    merkle_root: bytes
    sealed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: uuid.UUID
    stream: str
    partition_key: str
    envelope: bytes


def _entry_from_row(row: Mapping[str, Any]) -> ChainEntry:
    return ChainEntry(
        organization_id=row["organization_id"],
        sequence=row["sequence"],
        kind=row["entry_kind"],
        transfer_id=row["transfer_id"],
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        currency=row["currency"],
        amount_minor=row["amount_minor"],
        occurred_at=row["occurred_at"],
        previous_hash=bytes(row["previous_hash"]),
        entry_hash=bytes(row["entry_hash"]),
    )


def _head_from_row(row: Mapping[str, Any]) -> ChainHead:
    return ChainHead(
        row["organization_id"],
        row["last_sequence"],
        bytes(row["last_hash"]),
        row["sealed_through"],
        row["block_count"],
    )


class ChainStore:
    async def lock_heads(
        self, connection: asyncpg.Connection, organization_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChainHead]:
        """Locks each tenant's append point once per transaction (after the account locks, in tenant order). A
        tenant's first commit creates its head first (one extra round trip, once per tenant)."""
        ordered = sorted(set(organization_ids))
        heads = await self._select_heads_for_update(connection, ordered)
        if len(heads) < len(ordered):
            await connection.execute(
                """INSERT INTO chain_heads (organization_id, last_sequence, last_hash)
                   SELECT org, 0, $2 FROM unnest($1::uuid[]) AS org ON CONFLICT DO NOTHING""",
                [org for org in ordered if org not in heads],
                GENESIS_HASH,
            )
            heads = await self._select_heads_for_update(connection, ordered)
        return heads

    async def _select_heads_for_update(
        self, connection: asyncpg.Connection, ordered: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChainHead]:
        rows = await connection.fetch(
            """SELECT organization_id, last_sequence, last_hash, sealed_through, block_count FROM chain_heads
               WHERE organization_id = ANY($1::uuid[]) ORDER BY organization_id FOR UPDATE""",
            ordered,
        )
        return {r["organization_id"]: _head_from_row(r) for r in rows}

    async def entries(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, first_sequence: int, last_sequence: int
    ) -> list[ChainEntry]:
        rows = await connection.fetch(
            """SELECT * FROM chain_entries WHERE organization_id = $1 AND sequence BETWEEN $2 AND $3
               ORDER BY sequence""",
            organization_id,
            first_sequence,
            last_sequence,
        )
        return [_entry_from_row(r) for r in rows]

    async def entry_hash(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, sequence: int
    ) -> bytes | None:
        value = await connection.fetchval(
            "SELECT entry_hash FROM chain_entries WHERE organization_id = $1 AND sequence = $2",
            organization_id,
            sequence,
        )
        return None if value is None else bytes(value)

    async def head(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, *, lock: bool = False
    ) -> ChainHead | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await connection.fetchrow(
            f"""SELECT organization_id, last_sequence, last_hash, sealed_through, block_count FROM chain_heads
                WHERE organization_id = $1{suffix}""",  # noqa: S608 -- only constant SQL fragments are interpolated
            organization_id,
        )
        return None if row is None else _head_from_row(row)

    async def unsealed_tenants(self, connection: asyncpg.Connection, limit: int) -> list[uuid.UUID]:
        rows = await connection.fetch(
            "SELECT organization_id FROM chain_heads WHERE last_sequence > sealed_through ORDER BY organization_id LIMIT $1",
            limit,
        )
        return [r["organization_id"] for r in rows]

    async def lock_seal_point(self, connection: asyncpg.Connection, organization_id: uuid.UUID) -> ChainHead | None:
        """The head without blocking writers: the sealer serializes on a transaction advisory lock instead."""
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))", str(organization_id))
        return await self.head(connection, organization_id)

    async def insert_block(self, connection: asyncpg.Connection, block: Block) -> None:
        await connection.execute(
            """INSERT INTO chain_blocks (organization_id, block_number, first_sequence, last_sequence, merkle_root,
                   sealed_at) VALUES ($1, $2, $3, $4, $5, $6)""",
            block.organization_id,
            block.block_number,
            block.first_sequence,
            block.last_sequence,
            block.merkle_root,
            block.sealed_at,
        )
        await connection.execute(
            "UPDATE chain_heads SET sealed_through = $2, block_count = $3 WHERE organization_id = $1",
            block.organization_id,
            block.last_sequence,
            block.block_number,
        )

    async def block_containing(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, sequence: int
    ) -> Block | None:
        row = await connection.fetchrow(
            """SELECT * FROM chain_blocks WHERE organization_id = $1 AND last_sequence >= $2
               ORDER BY last_sequence LIMIT 1""",
            organization_id,
            sequence,
        )
        if row is None or row["first_sequence"] > sequence:
            return None
        return Block(
            row["organization_id"],
            row["block_number"],
            row["first_sequence"],
            row["last_sequence"],
            bytes(row["merkle_root"]),
            row["sealed_at"],
        )

    async def blocks(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, first_sequence: int, last_sequence: int
    ) -> list[Block]:
        rows = await connection.fetch(
            """SELECT * FROM chain_blocks WHERE organization_id = $1 AND last_sequence >= $2 AND first_sequence <= $3
               ORDER BY block_number""",
            organization_id,
            first_sequence,
            last_sequence,
        )
        return [
            Block(
                r["organization_id"],
                r["block_number"],
                r["first_sequence"],
                r["last_sequence"],
                bytes(r["merkle_root"]),
                r["sealed_at"],
            )
            for r in rows
        ]

    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
        """The kit's outbox table, filled with one statement per group commit (``services.kit.outbox.enqueue`` does
        one row per call)."""
        if not rows:
            return
        assert connection.is_in_transaction(), "outbox rows must be written in the fact's transaction"
        await connection.execute(
            """INSERT INTO outbox (event_id, stream, partition_key, envelope)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])""",
            [r.event_id for r in rows],
            [r.stream for r in rows],
            [r.partition_key for r in rows],
            [r.envelope for r in rows],
        )
