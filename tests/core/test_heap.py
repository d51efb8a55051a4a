"""The stream consumer's collector setting (modwatch.heap)."""

from __future__ import annotations

import gc

from modwatch import heap


def test_collect_less_often_raises_only_the_young_threshold():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        heap.collect_less_often()
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.set_threshold(*before)
