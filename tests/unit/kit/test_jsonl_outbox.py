"""The dev outbox file: one JSON line per record, private to its user (directory 0700, file 0600)."""

from __future__ import annotations

import stat
from pathlib import Path

from services.kit.jsonl_outbox import OUTBOX_DIRECTORY_MODE, OUTBOX_FILE_MODE, JsonLinesOutbox


async def test_records_are_appended_as_json_lines_in_a_private_file(tmp_path: Path) -> None:
    outbox = JsonLinesOutbox(tmp_path / "mail" / "outbox.jsonl")
    assert outbox.read() == []
    await outbox.append({"to": "a@example.com", "body": "first\nline"})
    await outbox.append({"to": "b@example.com", "body": "second"})
    assert outbox.read() == [
        {"to": "a@example.com", "body": "first\nline"},
        {"to": "b@example.com", "body": "second"},
    ]
    assert len(outbox.path.read_text(encoding="utf-8").splitlines()) == 2
    assert stat.S_IMODE(outbox.path.stat().st_mode) == OUTBOX_FILE_MODE
    assert stat.S_IMODE(outbox.path.parent.stat().st_mode) == OUTBOX_DIRECTORY_MODE
