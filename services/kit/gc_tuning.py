"""Garbage-collector settings for a serving process, applied once it has started.

A service allocates hundreds of thousands of long-lived objects at start (modules, protobuf descriptors, gRPC and
driver state) and then, per call, many short-lived ones. With CPython's defaults the collector runs every 700 net
allocations and its older generations keep re-scanning the start-up objects, which profiled at 6-8% of a ledger
process's CPU under batch load. So, once started: collect, then freeze what survived (the collector no longer scans
it; it is never freed, as it lives as long as the process anyway), and let the young generation grow to
``YOUNG_GENERATION_THRESHOLD`` objects before a collection. Reference counting still frees almost everything at
once; only cycles wait for a collection, a little longer.
"""

from __future__ import annotations

import gc

# CPython's default is 700; a ledger batch of 100 transfers allocates tens of thousands of objects.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_after_start() -> None:
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
