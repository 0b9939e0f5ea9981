"""The collector settings a long-running process takes once started (app.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.heap import YOUNG_THRESHOLD, settle_after_start


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_what_exists_at_start_is_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    kept_from_start = [{"n": n} for n in range(1000)]
    settle_after_start()
    assert gc.get_freeze_count() >= len(kept_from_start)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    # What the process allocates later stays collectable.
    made_later: list[object] = []
    made_later.append(made_later)
    assert gc.is_tracked(made_later)
    del made_later
    assert gc.collect() >= 1
