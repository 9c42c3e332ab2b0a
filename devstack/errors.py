"""The one error type the local runner reports to a person: a single line saying what failed and what to do."""

from __future__ import annotations


class DevstackError(Exception):
    """A failure the developer can act on. ``str(error)`` is one line: the reason, then what to do about it.

    ``details`` holds extra lines (e.g. the tail of a log) printed below that line; they are never needed to
    understand the failure, only to debug it.
    """

    def __init__(self, message: str, *, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.details = details
