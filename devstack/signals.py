"""Ctrl-C and SIGTERM as one exception, raised once, so start-up and the wait loop unwind into the same shutdown.

After the first signal (or once shutdown has begun for another reason) further signals are ignored: shutdown is
already bounded by its own timeouts, and an exception raised in the middle of it would leave processes behind.
For the same reason a signal that arrives while a process is being started and registered for shutdown
(:meth:`StopSignals.deferred`) is raised only once that is done.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """The user asked the suite to stop. A BaseException, like KeyboardInterrupt, so no ``except Exception`` in a
    library swallows it."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class StopSignals:
    def __init__(self) -> None:
        self.shutting_down = False
        self._deferring = 0
        self._pending: str | None = None

    def install(self) -> None:
        for signal_number in STOP_SIGNALS:
            signal.signal(signal_number, self._handle)

    def begin_shutdown(self) -> None:
        """From now on, signals no longer interrupt: we are already stopping."""
        self.shutting_down = True

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a stop signal until the block ends: a process forked but not yet registered would be orphaned."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self._deferring == 0 and self._pending is not None:
            self._raise(self._pending)

    def _handle(self, signal_number: int, frame: FrameType | None) -> None:
        if self.shutting_down:
            return
        name = signal.Signals(signal_number).name
        if self._deferring:
            self._pending = name
            return
        self._raise(name)

    def _raise(self, signal_name: str) -> None:
        self._pending = None
        self.shutting_down = True
        raise StopRequested(signal_name)
