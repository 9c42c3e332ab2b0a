"""Use cases of key rotation: RotateKek / RotateBlindIndexKey start a background job, the status RPCs report it,
and ``advance`` moves one batch (called by the background loop, resumable after a restart because every row
records its own key version and the job's progress lives in Postgres).

Reads keep working during a rewrap (each data key names the KEK version that wraps it and the ring keeps both) and
during a reindex (lookups compute the index under the current and the previous version).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from prometheus_client import Gauge

from services.contacts.contact_reader import CONTACT_TABLE, PHONE_FIELD
from services.contacts.crypto import BlindIndexer, Kms, data_key_aad, signing_key_aad
from services.contacts.domain import (
    CiphertextInvalid,
    Contact,
    KeyRotationInProgress,
    KeyVersionUnavailable,
    phone_from_e164,
)
from services.contacts.domain_keys import KeyJob, KeyJobKind, KeyJobState, next_key_version
from services.contacts.envelope import Envelope, decrypt_field
from services.contacts.store_secrets import SigningKeyRecord
from services.kit.errors import FieldViolation, NotFound, WalletError, invalid
from services.kit.ids import parse_uuid, uuid7

log = logging.getLogger(__name__)

KEY_JOB_ITEMS_REMAINING = Gauge(
    "wallet_contacts_key_job_items_remaining",
    "Items (data keys or index rows) the running key job still has to move; 0 when none runs.",
    ["kind"],
)
KEY_JOB_PROGRESS_RATIO = Gauge(
    "wallet_contacts_key_job_progress_ratio", "Share of the last key job's items moved (1 when finished).", ["kind"]
)


def _export_progress(job: KeyJob, items_done: int, finished: bool) -> None:
    kind = job.kind.name.lower()
    total = max(job.items_total, 1)
    done = job.items_total if finished else min(items_done, job.items_total)
    KEY_JOB_ITEMS_REMAINING.labels(kind).set(job.items_total - done)
    KEY_JOB_PROGRESS_RATIO.labels(kind).set(done / total if job.items_total else 1.0)


class KeysTx(Protocol):
    async def key_versions(self) -> tuple[int, int]: ...

    async def data_key(self, organization_id: UUID, customer_id: UUID) -> tuple[int, bytes | None] | None: ...

    async def job_by_request(self, request_id: UUID) -> KeyJob | None: ...

    async def job(self, kind: KeyJobKind, key_job_id: UUID | None) -> KeyJob | None: ...

    async def running_job(self) -> KeyJob | None: ...

    async def count_items(self, kind: KeyJobKind, to_version: int) -> int: ...

    async def start_job(self, job: KeyJob) -> None: ...

    async def resume_job(self, key_job_id: UUID, now: datetime) -> None: ...

    async def record_progress(self, key_job_id: UUID, done: int, now: datetime) -> None: ...

    async def finish_job(self, key_job_id: UUID, state: KeyJobState, error: str, now: datetime) -> None: ...

    async def data_keys_to_rewrap(self, to_version: int, limit: int) -> list[tuple[UUID, UUID, int, bytes]]: ...

    async def store_rewrapped(self, rows: Sequence[tuple[UUID, UUID, int, bytes]]) -> None: ...

    async def signing_keys_to_rewrap(self, to_version: int) -> list[SigningKeyRecord]: ...

    async def store_rewrapped_signing_key(self, record: SigningKeyRecord) -> None: ...

    async def contacts_to_reindex(self, to_version: int, limit: int) -> list[Contact]: ...

    async def store_reindexed(self, rows: Sequence[tuple[UUID, UUID, bytes, int]]) -> None: ...

    async def one_data_key_per_kek_version(self) -> list[tuple[UUID, UUID, int, bytes]]: ...

    async def one_contact_per_blind_index_version(self) -> list[tuple[Contact, bytes]]: ...


class KeysStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[KeysTx]: ...


class KeyJobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no such key job")


class KeysService:
    def __init__(
        self,
        store: KeysStore,
        kms: Kms,
        indexer: BlindIndexer,
        clock: Callable[[], datetime],
        batch_size: int,
    ) -> None:
        self._store = store
        self._kms = kms
        self._envelope = Envelope(kms)
        self._indexer = indexer
        self._clock = clock
        self._batch_size = batch_size

    async def rotate(self, kind: KeyJobKind, request_id_text: str) -> KeyJob:
        violations: list[FieldViolation] = []
        request_id = parse_uuid(request_id_text, "request_id", violations)
        if violations:
            raise invalid(violations)
        assert request_id is not None
        now = self._clock()
        configured = self._kms.versions() if kind is KeyJobKind.KEK_REWRAP else self._indexer.versions()
        async with self._store.transaction() as tx:
            replayed = await tx.job_by_request(request_id)
            if replayed is not None:
                return replayed
            running = await tx.running_job()
            if running is not None:
                raise KeyRotationInProgress()
            kek_version, blind_version = await tx.key_versions()
            current = kek_version if kind is KeyJobKind.KEK_REWRAP else blind_version
            latest = await tx.job(kind, None)
            if latest is not None and latest.state is KeyJobState.FAILED and latest.to_key_version == current:
                # Starting the same rotation again resumes the failed job where it stopped.
                await tx.resume_job(latest.key_job_id, now)
                resumed = await tx.job(kind, latest.key_job_id)
                assert resumed is not None
                return resumed
            target = next_key_version(current, configured)
            if target is None:
                raise KeyVersionUnavailable("no newer key version is configured: add it to the key ring and restart")
            job = KeyJob(
                key_job_id=uuid7(),
                request_id=request_id,
                kind=kind,
                state=KeyJobState.RUNNING,
                from_key_version=current,
                to_key_version=target,
                items_total=await tx.count_items(kind, target),
                items_done=0,
                started_at=now,
                updated_at=now,
                finished_at=None,
                error="",
            )
            await tx.start_job(job)
        log.info("key job started", extra={"fields": {"kind": kind.name, "to_key_version": target}})
        return job

    async def status(self, kind: KeyJobKind, key_job_id_text: str) -> KeyJob:
        violations: list[FieldViolation] = []
        key_job_id = parse_uuid(key_job_id_text, "key_job_id", violations, required=False)
        if violations:
            raise invalid(violations)
        async with self._store.transaction() as tx:
            job = await tx.job(kind, key_job_id)
        if job is None:
            raise KeyJobNotFound()
        return job

    async def check_keys(self) -> list[str]:
        """Start-up check that the configured keys are the ones the vault's data was written with: one data key per
        KEK version in use must unwrap, and one contact per blind-index version must re-index to its stored index.
        Returns the problems (naming versions, never key material); empty when the keys fit."""
        problems: list[str] = []
        async with self._store.transaction() as tx:
            for organization_id, customer_id, version, wrapped in await tx.one_data_key_per_kek_version():
                try:
                    await self._kms.unwrap(version, wrapped, data_key_aad(organization_id, customer_id, version))
                except WalletError:
                    problems.append(
                        f"CONTACTS_KEK version {version} is missing or does not match the stored data keys"
                    )
            if problems:
                return problems
            for contact, stored_index in await tx.one_contact_per_blind_index_version():
                stored = await tx.data_key(contact.organization_id, contact.customer_id)
                assert stored is not None
                assert stored[1] is not None
                assert contact.phone_ciphertext is not None
                data_key = await self._envelope.unwrap(
                    contact.organization_id, contact.customer_id, stored[0], stored[1]
                )
                try:
                    e164 = decrypt_field(
                        data_key,
                        contact.organization_id,
                        CONTACT_TABLE,
                        contact.contact_id,
                        PHONE_FIELD,
                        contact.phone_ciphertext,
                    )
                except CiphertextInvalid:
                    # One damaged row says nothing about the keys (the KEK already unwrapped its data key).
                    continue
                if self._blind_version_of(stored_index, e164) is None:
                    problems.append("CONTACTS_BLIND_INDEX_KEY does not match the stored blind indexes")
                    break
        return problems

    def _blind_version_of(self, stored_index: bytes, e164: str) -> int | None:
        for version in self._indexer.versions():
            if self._indexer.index(version, e164) == stored_index:
                return version
        return None

    async def advance(self) -> bool:
        """Moves one batch of the running job; False when there is nothing to do. A failure marks the job FAILED
        (with a safe message) and is logged; RotateX with the same target resumes it."""
        async with self._store.transaction() as tx:
            job = await tx.running_job()
            if job is None:
                return False
            try:
                if job.kind is KeyJobKind.KEK_REWRAP:
                    done = await self._rewrap_batch(tx, job.to_key_version)
                else:
                    done = await self._reindex_batch(tx, job.to_key_version)
            except WalletError as err:
                failed: tuple[UUID, str] | None = (job.key_job_id, err.reason)
            else:
                failed = None
                now = self._clock()
                if done:
                    await tx.record_progress(job.key_job_id, done, now)
                else:
                    await tx.finish_job(job.key_job_id, KeyJobState.COMPLETED, "", now)
                    log.info("key job completed", extra={"fields": {"kind": job.kind.name}})
                _export_progress(job, job.items_done + done, finished=not done)
        if failed is not None:
            async with self._store.transaction() as tx:
                await tx.finish_job(failed[0], KeyJobState.FAILED, f"stopped on {failed[1]}", self._clock())
            log.error("key job failed", extra={"fields": {"reason": failed[1]}})
            return False
        return True

    async def _rewrap_batch(self, tx: KeysTx, to_version: int) -> int:
        rows = await tx.data_keys_to_rewrap(to_version, self._batch_size)
        rewrapped: list[tuple[UUID, UUID, int, bytes]] = []
        for organization_id, customer_id, from_version, wrapped in rows:
            data_key = await self._kms.unwrap(
                from_version, wrapped, data_key_aad(organization_id, customer_id, from_version)
            )
            new_wrapped = await self._kms.wrap(
                to_version, data_key, data_key_aad(organization_id, customer_id, to_version)
            )
            rewrapped.append((organization_id, customer_id, to_version, new_wrapped))
        await tx.store_rewrapped(rewrapped)
        if not rows:
            for record in await tx.signing_keys_to_rewrap(to_version):
                raw = await self._kms.unwrap(
                    record.kek_version,
                    record.wrapped_private_key,
                    signing_key_aad(record.signing_key_id, record.kek_version),
                )
                wrapped_again = await self._kms.wrap(
                    to_version, raw, signing_key_aad(record.signing_key_id, to_version)
                )
                await tx.store_rewrapped_signing_key(
                    SigningKeyRecord(record.signing_key_id, to_version, wrapped_again, record.public_key)
                )
        return len(rewrapped)

    async def _reindex_batch(self, tx: KeysTx, to_version: int) -> int:
        contacts = await tx.contacts_to_reindex(to_version, self._batch_size)
        keys: dict[tuple[UUID, UUID], bytes] = {}
        reindexed: list[tuple[UUID, UUID, bytes, int]] = []
        for contact in contacts:
            subject = (contact.organization_id, contact.customer_id)
            if subject not in keys:
                stored = await tx.data_key(*subject)
                assert stored is not None
                assert stored[1] is not None
                keys[subject] = await self._envelope.unwrap(
                    contact.organization_id, contact.customer_id, stored[0], stored[1]
                )
            assert contact.phone_ciphertext is not None
            e164 = decrypt_field(
                keys[subject],
                contact.organization_id,
                CONTACT_TABLE,
                contact.contact_id,
                PHONE_FIELD,
                contact.phone_ciphertext,
            )
            index = self._indexer.index(to_version, phone_from_e164(e164).e164)
            reindexed.append((contact.organization_id, contact.contact_id, index, to_version))
        await tx.store_reindexed(reindexed)
        return len(reindexed)
