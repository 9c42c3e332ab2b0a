"""Background key jobs (KEK rewrap, blind-index reindex): kinds, states and the job record."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


class KeyJobKind(enum.IntEnum):
    KEK_REWRAP = 1
    BLIND_INDEX_REINDEX = 2


class KeyJobState(enum.IntEnum):
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3


@dataclass(frozen=True, slots=True)
class KeyJob:
    key_job_id: UUID
    request_id: UUID
    kind: KeyJobKind
    state: KeyJobState
    from_key_version: int
    to_key_version: int
    items_total: int
    items_done: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str


def next_key_version(current: int, configured: frozenset[int]) -> int | None:
    """The newest configured version above the current one, or None when there is none to rotate to."""
    newer = [version for version in configured if version > current]
    return max(newer) if newer else None


@dataclass(frozen=True, slots=True)
class BackupInfo:
    backup_id: UUID
    location: str
    size_bytes: int
    sha256: str
    backup_key_version: int
    contact_count: int
    card_secret_count: int
    created_at: datetime
