"""The garbage collector's pauses are timed, and the start-up heap is frozen out of its collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from service.observability.gc_pauses import GcPauses, freeze_startup_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_each_collection_is_observed_by_its_generation_while_installed() -> None:
    histogram = Histogram("gc_pause_seconds", "test", ["generation"], registry=CollectorRegistry())
    pauses = GcPauses(histogram)
    pauses.install()
    pauses.install()  # once only
    try:
        gc.collect()
    finally:
        pauses.uninstall()
    gc.collect()  # not observed any more
    assert histogram.collect()[0].samples == []  # nothing observed inside the collector's callback
    pauses.flush()
    oldest = {s.name.rsplit("_", 1)[-1]: s.value for s in histogram.collect()[0].samples
              if s.labels["generation"] == "2"}
    assert oldest["count"] == 1 and oldest["sum"] > 0


def test_freezing_leaves_no_start_up_object_to_walk(restored_gc: None) -> None:
    made_at_start_up = [[i] for i in range(1000)]
    freeze_startup_heap()
    assert gc.get_freeze_count() >= len(made_at_start_up)
    walked = {id(o) for generation in range(3) for o in gc.get_objects(generation=generation)}
    assert id(made_at_start_up) not in walked and id(made_at_start_up[0]) not in walked


def test_a_full_collection_waits_for_as_many_young_ones_as_configured(restored_gc: None) -> None:
    young, middle, _ = gc.get_threshold()
    freeze_startup_heap(full_after=100)
    assert gc.get_threshold() == (young, middle, 100)


def test_a_collection_while_prometheus_holds_its_lock_does_not_wait_for_it() -> None:
    # The deadlock this guards against: a collection triggered inside prometheus_client while it holds a lock
    # that is not reentrant (a request's first labels() call), and the callback observing the histogram.
    histogram = Histogram("gc_pause_locked_seconds", "test", ["generation"], registry=CollectorRegistry())
    pauses = GcPauses(histogram)
    pauses.install()
    try:
        with histogram._lock:  # what labels() holds while it builds a child
            gc.collect()
    finally:
        pauses.uninstall()
    pauses.flush()
    assert sum(1 for s in histogram.collect()[0].samples if s.name.endswith("_count") and s.value) >= 1
