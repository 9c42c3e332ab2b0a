"""A dev outbox file: JSON lines appended to a local file that stands in for an edge provider (the vault's SMS sink,
auth's mail sink). The file holds a recipient in the clear on purpose — it is what the provider would receive — so
it is private to the service's user: the directory is created 0700 and the file 0600. Dev and tests only; a
production deployment plugs a provider adapter in its place.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path

OUTBOX_DIRECTORY_MODE = 0o700
OUTBOX_FILE_MODE = 0o600


class JsonLinesOutbox:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=OUTBOX_DIRECTORY_MODE)
        # The mode applies when the file is created; an existing file keeps its own (an operator's choice).
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, OUTBOX_FILE_MODE)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    async def append(self, record: Mapping[str, str]) -> None:
        """Appends one record as one JSON line (off the event loop: a file write may block)."""
        await asyncio.to_thread(self._append, json.dumps(dict(record)))

    def read(self) -> list[dict[str, str]]:
        """Every record written so far (tests and dev tools); an absent file has none."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
