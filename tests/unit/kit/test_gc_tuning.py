"""Once a service has started, what survived start-up is frozen and the young generation is larger."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.kit import gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_after_start_freezes_the_start_up_objects_and_widens_the_young_generation() -> None:
    survivor: list[object] = [["allocated at start-up"]]
    assert gc.is_tracked(survivor)
    middle, oldest = gc.get_threshold()[1:]
    gc_tuning.settle_after_start()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (gc_tuning.YOUNG_GENERATION_THRESHOLD, middle, oldest)
    assert not any(tracked is survivor for tracked in gc.get_objects()), "frozen: out of the collector's sight"
