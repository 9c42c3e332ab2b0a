"""Files walletctl's exports write: CSV or JSON Lines rows, written to a temporary file beside the target and renamed
over it only when complete, so a reader never sees half an export and a failed run leaves no file behind."""

from __future__ import annotations

import contextlib
import csv
import enum
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class RowWriter:
    """Writes rows with a fixed set of columns as CSV (a header, then one line per row) or JSON Lines."""

    def __init__(self, handle: IO[str], export_format: ExportFormat, columns: Sequence[str]) -> None:
        self._handle = handle
        self._format = export_format
        self._columns = list(columns)
        self._csv: Any = None
        if export_format is ExportFormat.CSV:
            self._csv = csv.DictWriter(handle, fieldnames=self._columns, lineterminator="\n")
            self._csv.writeheader()
        self.rows_written = 0

    def write(self, row: Mapping[str, Any]) -> None:
        assert set(row) == set(self._columns), sorted(set(row) ^ set(self._columns))
        if self._csv is not None:
            self._csv.writerow(row)
        else:
            self._handle.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
        self.rows_written += 1


@contextlib.contextmanager
def atomic_text_file(target: Path) -> Iterator[IO[str]]:
    """A text file that appears at ``target`` (replacing any file there) only if the block finishes; flushed and
    fsynced before the rename. The temporary file sits in the target's directory, so the rename is atomic."""
    directory = target.parent if str(target.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
