"""CPU time of the bench's server processes (Linux ``/proc``): a cost per call that, unlike calls per second, does not
fall when other work shares the machine's cores."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def processes_cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes have used so far (0 for one without procfs)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
