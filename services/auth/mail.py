"""Where member mail goes: a ``MailSink`` receives the recipient's address and a notice's fixed text.

Dev: ``FileMailSink`` appends JSON lines (``notification_id``, ``to``, ``subject``, ``body``) to
``$WALLET_RUN_DIR/mail/outbox.jsonl`` (``AUTH_MAIL_OUTBOX``) through the kit's ``JsonLinesOutbox`` (directory 0700,
file 0600) — the one place outside auth's database where a member's address appears, on purpose, standing in for the
mail provider, as the vault's SMS outbox does for texts. Tests read that file. Prod: a provider adapter (SMTP relay
or a mail API) implementing ``MailSink`` — an edge this repository fakes, like SMS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from uuid import UUID

from services.kit.jsonl_outbox import JsonLinesOutbox


class MailSinkError(Exception):
    """The provider refused or could not take the message; the caller may retry with the same notification id.
    Its message must never contain the address or the text."""


class MailSink(Protocol):
    async def send(self, notification_id: UUID, to_address: str, subject: str, body: str) -> None:
        """Hands the message over, or raises ``MailSinkError`` (or ``OSError``). ``notification_id`` is stable
        across retries, so a provider that deduplicates by it never delivers twice."""
        ...


class FileMailSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._outbox = JsonLinesOutbox(path)

    async def send(self, notification_id: UUID, to_address: str, subject: str, body: str) -> None:
        record = {"notification_id": str(notification_id), "to": to_address, "subject": subject, "body": body}
        await self._outbox.append(record)
