"""Latency percentiles from per-request samples (the log files pgbench and h2load write)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

MICROSECONDS_PER_MILLISECOND = 1_000.0


def percentile(sorted_samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted samples; ``fraction`` in (0, 1]."""
    if not sorted_samples:
        raise ValueError("no samples")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    # Exact arithmetic on the decimal the caller wrote: in floats 0.07 * 100 is 7.000000000000001, rank 8, not 7.
    rank = math.ceil(Fraction(str(fraction)) * len(sorted_samples))
    return sorted_samples[rank - 1]


def p50_p99_ms(samples_us: Sequence[float]) -> tuple[float | None, float | None]:
    """(p50, p99) in milliseconds from samples in microseconds; (None, None) without samples."""
    if not samples_us:
        return None, None
    ordered = sorted(samples_us)
    return (
        percentile(ordered, 0.50) / MICROSECONDS_PER_MILLISECOND,
        percentile(ordered, 0.99) / MICROSECONDS_PER_MILLISECOND,
    )
