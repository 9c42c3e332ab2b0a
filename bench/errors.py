"""The bench's one error type: a one-line reason a person can act on."""

from __future__ import annotations


class BenchError(Exception):
    """A section or the harness cannot go on; ``str(error)`` says why and what to do."""
