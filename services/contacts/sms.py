"""Where SMS go: a ``SmsSink`` receives the plaintext number and the message inside the vault.

Dev: ``FileSmsSink`` appends JSON lines to ``$WALLET_RUN_DIR/sms/outbox.jsonl`` through the kit's
``JsonLinesOutbox`` (directory 0700, file 0600) — the one place outside the vault's memory where a plaintext number
appears, on purpose, standing in for the SMS provider (dev only; never enabled in prod). Tests read that file. Prod: a
provider adapter implementing ``SmsSink`` (not built yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from uuid import UUID

from services.kit.jsonl_outbox import JsonLinesOutbox


class SmsSinkError(Exception):
    """The provider refused or could not take the message; the caller may retry with the same notification id.
    Its message must never contain the number or the text."""


class SmsSink(Protocol):
    async def send(self, notification_id: UUID, to_e164: str, body: str) -> None:
        """Hands the message over, or raises ``SmsSinkError`` (or ``OSError``)."""
        ...


class FileSmsSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._outbox = JsonLinesOutbox(path)

    async def send(self, notification_id: UUID, to_e164: str, body: str) -> None:
        await self._outbox.append({"notification_id": str(notification_id), "to": to_e164, "body": body})
