"""SQL of the vault's contacts, data keys and request ids (asyncpg, ``$1`` parameters, keyset pagination).

``PgVault.transaction()`` opens one transaction and yields a ``PgVaultTx`` whose methods run inside it; the other
store modules add their tables' statements to the same class by mixin. Rows map to domain types here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import asyncpg

from services.contacts.domain import Contact, ContactAlreadyExists, ContactDraft, Purpose
from services.contacts.domain_access_log import AccessAction
from services.contacts.domain_directory import PROBE_INDEXES_MAX, PayeeAccounts, ResolveProbe
from services.contacts.store_access_log import AccessLogStatements
from services.contacts.store_backup import BackupStatements
from services.contacts.store_keys import KeyStatements
from services.contacts.store_rows import contact_from_row as _contact
from services.contacts.store_rows import thresholds_json as _thresholds_json
from services.contacts.store_secrets import SecretStatements
from services.kit.db import transaction
from services.kit.kept_connection import KeptConnection

CONTACT_SQL = "SELECT * FROM contact WHERE organization_id = $1 AND contact_id = $2"
CONTACT_FOR_UPDATE_SQL = CONTACT_SQL + " FOR UPDATE"

# ResolvePhone, batched: one row per probe (``unnest`` of parallel arrays), the discoverable contact each finds, one
# RESOLVE access-log row per hit and one resolve_miss row per miss, in one statement. Up to three blind indexes per
# probe (key version and neighbours); unused ones are NULL and match nothing.
RESOLVE_BATCH_SQL = """
WITH probe AS (
    SELECT * FROM unnest($1::int[], $2::uuid[], $3::bytea[], $4::bytea[], $5::bytea[], $6::uuid[], $7::text[],
                         $8::text[], $9::text[], $10::timestamptz[])
        AS p(slot, organization_id, index_a, index_b, index_c, access_log_entry_id, actor_principal_id,
             on_behalf_of_principal_id, trace_id, occurred_at)
), hit AS (
    SELECT probe.*, found.customer_id, found.contact_id, found.default_account_id, found.discoverable_account_ids
    FROM probe CROSS JOIN LATERAL (
        SELECT customer_id, contact_id, default_account_id, discoverable_account_ids FROM contact
        WHERE contact.organization_id = probe.organization_id
          AND contact.blind_index IN (probe.index_a, probe.index_b, probe.index_c)
          AND contact.deleted_at IS NULL AND contact.discoverable
        LIMIT 1
    ) AS found
), logged AS (
    INSERT INTO access_log (organization_id, access_log_entry_id, customer_id, contact_id, card_secret_id, action,
        actor_principal_id, on_behalf_of_principal_id, reveal_purpose, justification, trace_id, occurred_at)
    SELECT organization_id, access_log_entry_id, customer_id, contact_id, NULL, $11, actor_principal_id,
        on_behalf_of_principal_id, 0, '', trace_id, occurred_at
    FROM hit ORDER BY slot
), missed AS (
    INSERT INTO resolve_miss (organization_id, actor_principal_id, on_behalf_of_principal_id, trace_id, occurred_at)
    SELECT organization_id, actor_principal_id, on_behalf_of_principal_id, trace_id, occurred_at
    FROM probe WHERE NOT EXISTS (SELECT 1 FROM hit WHERE hit.slot = probe.slot) ORDER BY slot
)
SELECT slot, customer_id, default_account_id, discoverable_account_ids FROM hit
"""


class PgVaultTx(AccessLogStatements, SecretStatements, KeyStatements, BackupStatements):
    """Statements run inside one transaction."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    # --- vault state and data keys -----------------------------------------------------------------------------

    async def key_versions(self) -> tuple[int, int]:
        row = await self.connection.fetchrow(
            "SELECT current_kek_version, current_blind_index_version FROM vault_state"
        )
        assert row is not None
        return row["current_kek_version"], row["current_blind_index_version"]

    async def data_key(self, organization_id: UUID, customer_id: UUID) -> tuple[int, bytes | None] | None:
        """(kek_version, wrapped key or None when erased), or None when the subject has no data key yet."""
        row = await self.connection.fetchrow(
            "SELECT kek_version, wrapped_key FROM data_key WHERE organization_id = $1 AND customer_id = $2",
            organization_id,
            customer_id,
        )
        return None if row is None else (row["kek_version"], row["wrapped_key"])

    async def insert_data_key(
        self, organization_id: UUID, customer_id: UUID, kek_version: int, wrapped_key: bytes, now: datetime
    ) -> bool:
        """False when another call created the subject's key first (the caller then reads that one)."""
        inserted = await self.connection.fetchval(
            """INSERT INTO data_key (organization_id, customer_id, kek_version, wrapped_key, created_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
            organization_id,
            customer_id,
            kek_version,
            wrapped_key,
            now,
        )
        return bool(inserted)

    async def erase_data_key(self, organization_id: UUID, customer_id: UUID, now: datetime) -> None:
        await self.connection.execute(
            """INSERT INTO data_key (organization_id, customer_id, kek_version, wrapped_key, created_at, erased_at)
               VALUES ($1, $2, 0, NULL, $3, $3)
               ON CONFLICT (organization_id, customer_id) DO UPDATE SET wrapped_key = NULL, erased_at = $3""",
            organization_id,
            customer_id,
            now,
        )

    # --- contacts -------------------------------------------------------------------------------------------------

    async def insert_contact(
        self,
        organization_id: UUID,
        draft: ContactDraft,
        phone_ciphertext: bytes,
        blind_index: bytes,
        blind_index_version: int,
        request_digest: bytes,
        retain_until: datetime,
        now: datetime,
    ) -> Contact | None:
        """The new contact, or None when the contact id exists (a replay: the caller compares)."""
        try:
            row = await self.connection.fetchrow(
                """INSERT INTO contact (organization_id, contact_id, customer_id, phone_ciphertext, blind_index,
                       blind_index_version, region_code, purposes, consent_reference, retention_s, retain_until,
                       alert_thresholds, request_digest, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
                   ON CONFLICT (organization_id, contact_id) DO NOTHING
                   RETURNING *""",
                organization_id,
                draft.contact_id,
                draft.customer_id,
                phone_ciphertext,
                blind_index,
                blind_index_version,
                draft.phone.region_code,
                sorted(int(p) for p in draft.purposes),
                draft.consent_reference,
                draft.retention_s,
                retain_until,
                _thresholds_json(draft.alert_thresholds),
                request_digest,
                now,
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "contact_unique_number":
                raise ContactAlreadyExists() from None
            raise
        return None if row is None else _contact(row)

    async def contact(self, organization_id: UUID, contact_id: UUID, *, for_update: bool = False) -> Contact | None:
        sql = CONTACT_FOR_UPDATE_SQL if for_update else CONTACT_SQL
        row = await self.connection.fetchrow(sql, organization_id, contact_id)
        return None if row is None else _contact(row)

    async def list_contacts(
        self,
        organization_id: UUID,
        customer_id: UUID | None,
        purpose: Purpose | None,
        after_contact_id: UUID | None,
        limit: int,
    ) -> list[Contact]:
        rows = await self.connection.fetch(
            """SELECT * FROM contact
               WHERE organization_id = $1 AND deleted_at IS NULL
                 AND ($2::uuid IS NULL OR customer_id = $2)
                 AND ($3::smallint IS NULL OR $3 = ANY(purposes))
                 AND ($4::uuid IS NULL OR contact_id > $4)
               ORDER BY contact_id LIMIT $5""",
            organization_id,
            customer_id,
            None if purpose is None else int(purpose),
            after_contact_id,
            limit,
        )
        return [_contact(row) for row in rows]

    async def contacts_of_subject(self, organization_id: UUID, customer_id: UUID) -> list[Contact]:
        rows = await self.connection.fetch(
            """SELECT * FROM contact WHERE organization_id = $1 AND customer_id = $2 AND deleted_at IS NULL
               ORDER BY contact_id""",
            organization_id,
            customer_id,
        )
        return [_contact(row) for row in rows]

    async def update_contact(
        self,
        contact: Contact,
        phone: tuple[bytes, bytes, int] | None,
        now: datetime,
    ) -> Contact:
        """Writes the contact's mutable fields (and, when ``phone`` is given, its ciphertext and blind index)."""
        try:
            row = await self.connection.fetchrow(
                """UPDATE contact SET purposes = $3, consent_reference = $4, retention_s = $5, retain_until = $6,
                       alert_thresholds = $7, discoverable = $8, default_account_id = $9,
                       discoverable_account_ids = $10, updated_at = $11,
                       phone_ciphertext = COALESCE($12, phone_ciphertext), blind_index = COALESCE($13, blind_index),
                       blind_index_version = COALESCE($14, blind_index_version), region_code = $15
                   WHERE organization_id = $1 AND contact_id = $2 RETURNING *""",
                contact.organization_id,
                contact.contact_id,
                sorted(int(p) for p in contact.purposes),
                contact.consent_reference,
                contact.retention_s,
                contact.retain_until,
                _thresholds_json(contact.alert_thresholds),
                contact.discoverable,
                contact.default_account_id,
                list(contact.discoverable_account_ids),
                now,
                None if phone is None else phone[0],
                None if phone is None else phone[1],
                None if phone is None else phone[2],
                contact.region_code,
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "contact_unique_number":
                raise ContactAlreadyExists() from None
            if err.constraint_name == "contact_one_discoverable":
                raise ContactAlreadyExists() from None
            raise
        assert row is not None
        return _contact(row)

    async def tombstone_contact(
        self, organization_id: UUID, contact_id: UUID, now: datetime, *, erased: bool
    ) -> None:
        await self.connection.execute(
            """UPDATE contact SET phone_ciphertext = NULL, blind_index = NULL, blind_index_version = NULL,
                   discoverable = false, default_account_id = NULL, discoverable_account_ids = '{}',
                   deleted_at = COALESCE(deleted_at, $3), updated_at = $3, erased = erased OR $4
               WHERE organization_id = $1 AND contact_id = $2""",
            organization_id,
            contact_id,
            now,
            erased,
        )

    async def erase_subject_rows(self, organization_id: UUID, customer_id: UUID, now: datetime) -> tuple[int, int]:
        """Tombstones every contact and card secret of the subject; returns how many were still held."""
        contacts = await self.connection.fetchval(
            """WITH erased AS (
                   UPDATE contact SET phone_ciphertext = NULL, blind_index = NULL, blind_index_version = NULL,
                       discoverable = false, default_account_id = NULL, discoverable_account_ids = '{}',
                       deleted_at = COALESCE(deleted_at, $3), updated_at = $3, erased = true
                   WHERE organization_id = $1 AND customer_id = $2 AND NOT erased
                   RETURNING deleted_at = $3 AS was_held)
               SELECT count(*) FILTER (WHERE was_held) FROM erased""",
            organization_id,
            customer_id,
            now,
        )
        cards = await self.connection.fetchval(
            """WITH erased AS (
                   UPDATE card_secret SET number_ciphertext = NULL, cvv_ciphertext = NULL, deleted_at = $3
                   WHERE organization_id = $1 AND customer_id = $2 AND deleted_at IS NULL RETURNING 1)
               SELECT count(*) FROM erased""",
            organization_id,
            customer_id,
            now,
        )
        return int(contacts), int(cards)

    async def find_discoverable(self, organization_id: UUID, blind_indexes: Sequence[bytes]) -> Contact | None:
        row = await self.connection.fetchrow(
            """SELECT * FROM contact WHERE organization_id = $1 AND blind_index = ANY($2::bytea[])
                   AND deleted_at IS NULL AND discoverable LIMIT 1""",
            organization_id,
            list(blind_indexes),
        )
        return None if row is None else _contact(row)

    async def expired_contacts(self, now: datetime, limit: int) -> list[Contact]:
        rows = await self.connection.fetch(
            """SELECT * FROM contact WHERE deleted_at IS NULL AND retain_until <= $1
               ORDER BY retain_until LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        return [_contact(row) for row in rows]

    # --- request ids ------------------------------------------------------------------------------------------

    async def claim_request(
        self, organization_id: UUID, request_id: UUID, method: str, digest: bytes, resource_id: UUID, now: datetime
    ) -> tuple[str, bytes, UUID] | None:
        """Records a request id; when it was used before, returns that use's (method, digest, resource id)."""
        inserted = await self.connection.fetchval(
            """INSERT INTO idempotent_request (organization_id, request_id, method, request_digest, resource_id,
                   created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
            organization_id,
            request_id,
            method,
            digest,
            resource_id,
            now,
        )
        if inserted:
            return None
        row = await self.connection.fetchrow(
            """SELECT method, request_digest, resource_id FROM idempotent_request
               WHERE organization_id = $1 AND request_id = $2""",
            organization_id,
            request_id,
        )
        assert row is not None
        return row["method"], row["request_digest"], row["resource_id"]


class PgVault:
    """Opens transactions on the vault's database."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        # A provider: the pool exists only once the server has connected.
        self._pool = pool
        # ResolvePhone's batches run back to back under load: no pool reset round trip between them.
        self._resolver_connection = KeptConnection(pool)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgVaultTx]:
        async with transaction(self.pool) as connection:
            yield PgVaultTx(connection)

    async def key_versions(self) -> tuple[int, int]:
        row = await self.pool.fetchrow("SELECT current_kek_version, current_blind_index_version FROM vault_state")
        assert row is not None
        return row["current_kek_version"], row["current_blind_index_version"]

    async def resolve_discoverable(self, probes: Sequence[ResolveProbe]) -> list[PayeeAccounts | None]:
        """One statement and one commit (autocommit) for a batch of probes, hits and misses alike: each probe finds
        the discoverable contact by blind index and appends either its RESOLVE access-log entry (a hit, with the
        subject found) or a ``resolve_miss`` row. Returns one result per probe, in order; nothing is returned
        before the commit, so every answered resolve is durably logged."""
        slots = list(range(len(probes)))
        indexes = [
            list(probe.blind_indexes) + [None] * (PROBE_INDEXES_MAX - len(probe.blind_indexes)) for probe in probes
        ]
        entries = [probe.entry for probe in probes]
        rows = await self._resolver_connection.fetch(
            RESOLVE_BATCH_SQL,
            slots,
            [entry.organization_id for entry in entries],
            [row[0] for row in indexes],
            [row[1] for row in indexes],
            [row[2] for row in indexes],
            [entry.access_log_entry_id for entry in entries],
            [entry.actor_principal_id for entry in entries],
            [entry.on_behalf_of_principal_id for entry in entries],
            [entry.trace_id for entry in entries],
            [entry.occurred_at for entry in entries],
            int(AccessAction.RESOLVE),
        )
        found: list[PayeeAccounts | None] = [None] * len(probes)
        for row in rows:
            found[row["slot"]] = PayeeAccounts(
                row["customer_id"], row["default_account_id"], tuple(row["discoverable_account_ids"])
            )
        return found
