"""``tune_gc_for_serving``: what ``autohands run`` does to the collector once started."""

from __future__ import annotations

import gc

from hub.app import GC_YOUNG_THRESHOLD, tune_gc_for_serving


def test_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc_for_serving()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
