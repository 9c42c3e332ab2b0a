"""Tamper evidence and invariants: sealing blocks, VerifyChain, GetInclusionProof, CheckInvariants."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit.db import transaction
from services.kit.errors import FieldViolation, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.chain import ChainEntry, audit_path, canonical_encoding, first_broken, merkle_root
from services.ledger.commit import Clock
from services.ledger.errors import ChainEntryNotSealed, TransferNotFound
from services.ledger.events import block_sealed_event, outbox_row
from services.ledger.proof import GENESIS_HASH
from services.ledger.store_chain import Block, ChainHead, OutboxRow
from services.ledger.store_invariants import InvariantFinding


class IntegrityStore(Protocol):
    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None: ...
    async def unsealed_tenants(self, connection: asyncpg.Connection, limit: int) -> list[uuid.UUID]: ...
    async def lock_seal_point(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID
    ) -> ChainHead | None: ...
    async def entries(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, first_sequence: int, last_sequence: int
    ) -> list[ChainEntry]: ...
    async def insert_block(self, connection: asyncpg.Connection, block: Block) -> None: ...
    async def head(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, *, lock: bool = False
    ) -> ChainHead | None: ...
    async def entry_hash(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, sequence: int
    ) -> bytes | None: ...
    async def blocks(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, first_sequence: int, last_sequence: int
    ) -> list[Block]: ...
    async def block_containing(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, sequence: int
    ) -> Block | None: ...
    async def transfer_sequence(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> int | None: ...
    async def invariant_findings(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID | None
    ) -> tuple[list[tuple[uuid.UUID, str, int, int]], list[InvariantFinding]]: ...


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    intact: bool
    first_broken_sequence: int
    entries_checked: int
    blocks_checked: int
    last_sequence: int
    last_hash: bytes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    transfer_id: uuid.UUID
    sequence: int
    canonical_entry: bytes
    previous_hash: bytes
    entry_hash: bytes
    block: Block
    leaf_index: int
    leaf_count: int
    audit_path: list[bytes]


@dataclass(frozen=True, slots=True)
class InvariantReport:
    totals: list[tuple[uuid.UUID, str, int, int]]
    violations: list[InvariantFinding]
    checked_at: dt.datetime

    @property
    def intact(self) -> bool:
        return not self.violations


class IntegrityService:
    def __init__(self, pool: asyncpg.Pool, store: IntegrityStore, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def seal_pending(self) -> int:
        """One sealer round: for each tenant with unsealed entries, seal up to SEAL_BLOCK_ENTRIES_MAX into a block.
        Writers are not blocked: the sealer serializes on its own advisory lock per tenant, not the chain head."""
        sealed = 0
        async with self._pool.acquire() as connection:
            tenants = await self._store.unsealed_tenants(connection, 100)
        for organization_id in tenants:
            async with transaction(self._pool) as connection:
                head = await self._store.lock_seal_point(connection, organization_id)
                if head is None or head.last_sequence <= head.sealed_through:
                    continue
                first = head.sealed_through + 1
                last = min(head.last_sequence, head.sealed_through + limits.SEAL_BLOCK_ENTRIES_MAX)
                entries = await self._store.entries(connection, organization_id, first, last)
                block = Block(
                    organization_id=organization_id,
                    block_number=head.block_count + 1,
                    first_sequence=first,
                    last_sequence=last,
                    merkle_root=merkle_root([e.entry_hash for e in entries]),
                    sealed_at=self._clock(),
                )
                await self._store.insert_block(connection, block)
                row = outbox_row(organization_id, organization_id, block_sealed_event(block), block.sealed_at)
                await self._store.enqueue_events(connection, [row])
                sealed += 1
        return sealed

    async def verify_chain(self, caller: Caller, *, start_sequence: int, end_sequence: int) -> ChainVerdict:
        violations: list[FieldViolation] = []
        if start_sequence < 0:
            violations.append(FieldViolation("start_sequence", "must not be negative"))
        if end_sequence < 0 or (end_sequence and end_sequence < start_sequence):
            violations.append(FieldViolation("end_sequence", "must be 0 (the head) or at least start_sequence"))
        if violations:
            raise invalid(violations)
        org = caller.organization_id
        async with self._pool.acquire() as connection:
            head = await self._store.head(connection, org)
            if head is None:
                return ChainVerdict(True, 0, 0, 0, 0, GENESIS_HASH)
            first = max(1, start_sequence)
            last = min(
                end_sequence or head.last_sequence, head.last_sequence, first + limits.VERIFY_CHAIN_ENTRIES_MAX - 1
            )
            previous = GENESIS_HASH if first == 1 else await self._store.entry_hash(connection, org, first - 1)
            entries = await self._store.entries(connection, org, first, last)
            blocks = await self._store.blocks(connection, org, first, last)
        broken = first_broken(entries, previous or GENESIS_HASH)
        if broken is None and len(entries) != max(0, last - first + 1):
            present = {e.sequence for e in entries}
            broken = next(s for s in range(first, last + 1) if s not in present)
        by_sequence = {e.sequence: e for e in entries}
        for block in blocks:
            hashes = [
                by_sequence[s].entry_hash
                for s in range(block.first_sequence, block.last_sequence + 1)
                if s in by_sequence
            ]
            if (
                len(hashes) == block.last_sequence - block.first_sequence + 1
                and merkle_root(hashes) != block.merkle_root
            ):
                broken = min(broken or block.first_sequence, block.first_sequence)
        last_entry = entries[-1] if entries else None
        return ChainVerdict(
            intact=broken is None,
            first_broken_sequence=broken or 0,
            entries_checked=len(entries),
            blocks_checked=len(blocks),
            last_sequence=last_entry.sequence if last_entry else 0,
            last_hash=last_entry.entry_hash if last_entry else GENESIS_HASH,
        )

    async def inclusion_proof(self, caller: Caller, *, transfer_id: str, sequence: int) -> InclusionProof:
        violations: list[FieldViolation] = []
        parsed = parse_uuid(transfer_id, "transfer_id", violations)
        if sequence < 0:
            violations.append(FieldViolation("sequence", "must not be negative"))
        if violations:
            raise invalid(violations)
        assert parsed is not None
        org = caller.organization_id
        async with self._pool.acquire() as connection:
            wanted = sequence or await self._store.transfer_sequence(connection, org, parsed)
            if not wanted:
                raise TransferNotFound()
            block = await self._store.block_containing(connection, org, wanted)
            if block is None:
                entry_rows = await self._store.entries(connection, org, wanted, wanted)
                if not entry_rows or entry_rows[0].transfer_id != parsed:
                    raise TransferNotFound()
                raise ChainEntryNotSealed(wanted)
            entries = await self._store.entries(connection, org, block.first_sequence, block.last_sequence)
        index = wanted - block.first_sequence
        entry = entries[index]
        if entry.transfer_id != parsed:
            raise TransferNotFound()
        hashes = [e.entry_hash for e in entries]
        return InclusionProof(
            transfer_id=parsed,
            sequence=wanted,
            canonical_entry=canonical_encoding(entry),
            previous_hash=entry.previous_hash,
            entry_hash=entry.entry_hash,
            block=block,
            leaf_index=index,
            leaf_count=len(entries),
            audit_path=audit_path(hashes, index),
        )

    async def check_invariants(self, organization_id: uuid.UUID | None) -> InvariantReport:
        async with self._pool.acquire() as connection:
            totals, findings = await self._store.invariant_findings(connection, organization_id)
        return InvariantReport(totals, findings, self._clock())
