"""Data keys per data subject: create on first use, unwrap for reads, wrap under the current KEK version.

Used by the service modules inside their transactions; the KEK itself never leaves the ``Kms``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol
from uuid import UUID

from prometheus_client import Counter

from services.contacts.crypto import Kms, data_key_aad, field_aad, new_data_key, open_sealed, seal
from services.contacts.domain import CiphertextInvalid, SubjectErased

log = logging.getLogger(__name__)

# The alert: any increase means stored data or a key is wrong (tampering, a bad restore, a wrong KEK version).
INTEGRITY_FAILURES = Counter(
    "contacts_integrity_failures_total",
    "Ciphertexts or wrapped keys that failed authentication, by kind.",
    ["kind"],
)


def _integrity_failure(kind: str, organization_id: UUID, row_id: UUID, field: str) -> None:
    INTEGRITY_FAILURES.labels(kind).inc()
    log.error(
        "stored ciphertext failed authentication",
        extra={
            "fields": {"kind": kind, "organization_id": str(organization_id), "row_id": str(row_id), "field": field}
        },
    )


class DataKeyTx(Protocol):
    async def key_versions(self) -> tuple[int, int]: ...

    async def data_key(self, organization_id: UUID, customer_id: UUID) -> tuple[int, bytes | None] | None: ...

    async def insert_data_key(
        self, organization_id: UUID, customer_id: UUID, kek_version: int, wrapped_key: bytes, now: datetime
    ) -> bool: ...


class Envelope:
    def __init__(self, kms: Kms) -> None:
        self.kms = kms

    async def unwrap(self, organization_id: UUID, customer_id: UUID, kek_version: int, wrapped: bytes) -> bytes:
        try:
            return await self.kms.unwrap(
                kek_version, wrapped, data_key_aad(organization_id, customer_id, kek_version)
            )
        except CiphertextInvalid:
            _integrity_failure("data_key", organization_id, customer_id, f"kek:{kek_version}")
            raise

    async def existing_key(self, tx: DataKeyTx, organization_id: UUID, customer_id: UUID) -> bytes:
        """The subject's data key; SUBJECT_ERASED when it was shredded."""
        stored = await tx.data_key(organization_id, customer_id)
        if stored is None or stored[1] is None:
            raise SubjectErased()
        return await self.unwrap(organization_id, customer_id, stored[0], stored[1])

    async def key_for_write(self, tx: DataKeyTx, organization_id: UUID, customer_id: UUID, now: datetime) -> bytes:
        """The subject's data key, created and wrapped under the current KEK on first use."""
        stored = await tx.data_key(organization_id, customer_id)
        if stored is not None:
            if stored[1] is None:
                raise SubjectErased()
            return await self.unwrap(organization_id, customer_id, stored[0], stored[1])
        kek_version, _ = await tx.key_versions()
        data_key = new_data_key()
        wrapped = await self.kms.wrap(kek_version, data_key, data_key_aad(organization_id, customer_id, kek_version))
        if await tx.insert_data_key(organization_id, customer_id, kek_version, wrapped, now):
            return data_key
        # A concurrent first write won the race: use its key.
        return await self.existing_key(tx, organization_id, customer_id)


def encrypt_field(data_key: bytes, organization_id: UUID, table: str, row_id: UUID, field: str, value: str) -> bytes:
    return seal(data_key, value.encode(), field_aad(organization_id, table, row_id, field))


def decrypt_field(data_key: bytes, organization_id: UUID, table: str, row_id: UUID, field: str, sealed: bytes) -> str:
    try:
        return open_sealed(data_key, sealed, field_aad(organization_id, table, row_id, field)).decode()
    except CiphertextInvalid:
        _integrity_failure(table, organization_id, row_id, field)
        raise
