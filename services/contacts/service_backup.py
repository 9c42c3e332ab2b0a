"""Use cases of backups: CreateBackup writes an encrypted, integrity-checked file; RestoreBackup loads one into an
empty vault database.

File format: one JSON header line (``format``, ``backup_id``, ``backup_key_version``, counts, ``created_at``) then
``0x01 || nonce || AES-256-GCM(gzip(JSON dump))`` under the backup key of that version, with the header line as
associated data. The dump holds rows as stored (ciphertexts and KEK-wrapped keys), so the backup is encrypted twice
and a restore needs both the backup key and the KEK ring. The file's SHA-256 is reported and checked on restore.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from services.contacts.crypto import KeyRing, open_sealed, seal
from services.contacts.domain import BackupInvalid, CiphertextInvalid, RestoreTargetNotEmpty
from services.contacts.domain_keys import BackupInfo
from services.kit.errors import FieldViolation, invalid
from services.kit.ids import parse_uuid

BACKUP_FORMAT = "wallet.contacts.backup.v1"
BACKUP_SUFFIX = ".vault"


class BackupTx(Protocol):
    async def dump_tables(self) -> dict[str, Any]: ...

    async def vault_is_empty(self) -> bool: ...

    async def load_tables(self, dump: dict[str, Any]) -> None: ...

    async def record_backup(self, info: BackupInfo) -> None: ...

    async def backup_record(self, backup_id: UUID) -> BackupInfo | None: ...


class BackupStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[BackupTx]: ...


class BackupService:
    def __init__(self, store: BackupStore, ring: KeyRing, backup_dir: Path, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._ring = ring
        self._backup_dir = backup_dir
        self._clock = clock

    async def create_backup(self, backup_id_text: str) -> BackupInfo:
        violations: list[FieldViolation] = []
        backup_id = parse_uuid(backup_id_text, "backup_id", violations)
        if violations:
            raise invalid(violations)
        assert backup_id is not None
        now = self._clock()
        async with self._store.transaction() as tx:
            existing = await tx.backup_record(backup_id)
            if existing is not None:
                return existing
            dump = await tx.dump_tables()
        version = self._ring.newest_version
        contact_count = len(dump["contact"])
        card_secret_count = len(dump["card_secret"])
        header = {
            "format": BACKUP_FORMAT,
            "backup_id": str(backup_id),
            "backup_key_version": version,
            "contact_count": contact_count,
            "card_secret_count": card_secret_count,
            "created_at": now.isoformat(),
        }
        header_line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        body = seal(self._ring.key(version), gzip.compress(json.dumps(dump).encode()), header_line)
        content = header_line + b"\n" + body
        path = self._backup_dir / f"{backup_id}{BACKUP_SUFFIX}"
        await asyncio.to_thread(_write_private, path, content)
        info = BackupInfo(
            backup_id,
            str(path),
            len(content),
            hashlib.sha256(content).hexdigest(),
            version,
            contact_count,
            card_secret_count,
            now,
        )
        async with self._store.transaction() as tx:
            await tx.record_backup(info)
        return info

    async def restore_backup(self, location: str, sha256: str, request_id_text: str) -> BackupInfo:
        violations: list[FieldViolation] = []
        parse_uuid(request_id_text, "request_id", violations)
        path = self._resolve_location(location, violations)
        if len(sha256) != 64:
            violations.append(FieldViolation("sha256", "must be 64 hex digits"))
        if violations:
            raise invalid(violations)
        assert path is not None
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise invalid([FieldViolation("location", "no readable backup there")]) from None
        if hashlib.sha256(content).hexdigest() != sha256.lower():
            raise BackupInvalid("SHA-256 mismatch")
        header_line, _, body = content.partition(b"\n")
        try:
            header = json.loads(header_line)
            version = int(header["backup_key_version"])
        except (ValueError, KeyError, TypeError):
            raise BackupInvalid("unreadable header") from None
        if header.get("format") != BACKUP_FORMAT:
            raise BackupInvalid("not a contacts vault backup")
        try:
            dump = json.loads(gzip.decompress(open_sealed(self._ring.key(version), body, header_line)))
        except CiphertextInvalid:
            raise BackupInvalid("authentication failed (wrong backup key or tampered file)") from None
        async with self._store.transaction() as tx:
            if not await tx.vault_is_empty():
                raise RestoreTargetNotEmpty()
            await tx.load_tables(dump)
            info = BackupInfo(
                UUID(header["backup_id"]),
                str(path),
                len(content),
                sha256.lower(),
                version,
                int(header["contact_count"]),
                int(header["card_secret_count"]),
                datetime.fromisoformat(header["created_at"]),
            )
            await tx.record_backup(info)
        return info

    def _resolve_location(self, location: str, violations: list[FieldViolation]) -> Path | None:
        """Only files in the configured backup directory: a caller cannot make the vault read arbitrary paths."""
        if not location:
            violations.append(FieldViolation("location", "is required"))
            return None
        candidate = Path(location)
        if not candidate.is_absolute():
            candidate = self._backup_dir / candidate
        resolved = candidate.resolve()
        if resolved.parent != self._backup_dir.resolve() or resolved.suffix != BACKUP_SUFFIX:
            violations.append(FieldViolation("location", "must be a backup file in the vault's backup directory"))
            return None
        return resolved


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(content)
    temporary.chmod(0o600)
    temporary.replace(path)
