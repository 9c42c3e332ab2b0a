"""`make soak` runs the reliability tests longer (WALLET_SOAK=1): more crashes, more cases, more steps.

`make test` keeps the counts small enough for CI; the soak counts are still bounded, so a soak run ends.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("WALLET_SOAK", "") == "1"


def scaled(normal: int, soak: int) -> int:
    """``normal`` in `make test`, ``soak`` in `make soak`."""
    assert 0 < normal <= soak
    return soak if SOAK else normal
