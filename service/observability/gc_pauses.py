"""Pauses of Python's garbage collector: timed into a histogram, and the start-up heap frozen out of them.

A collection of the oldest generation walks every tracked object, and most of a server's are made at start-up
(modules, routes, clients): with the service's modules alone imported (90,000 objects) one full collection took
70 to 430 ms on the shared machine, and nothing else runs meanwhile: no request, poll wake-up or frame. Frozen
once the runtime has started, those objects are never walked again. What the serving heap itself costs stays:
with 2,000 long-polls waiting, bench/poll.py saw full collections of 0.4-0.5 s each (under a load of 6-9).
"""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

from prometheus_client import Histogram


def freeze_startup_heap(*, full_after: int | None = None) -> None:
    """Collect what start-up left, then move every surviving object out of the collector's generations; given
    `full_after`, a full collection follows only that many young (generation 1) ones instead of 10."""
    gc.collect()
    gc.freeze()
    if full_after is not None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, full_after)


class GcPauses:
    """Times each collection, by generation, while installed; `flush()` hands the times to the histogram.

    The collector's callback runs inside whatever code allocated, and that code may hold prometheus_client's
    locks, which are not reentrant: observing the histogram there deadlocked the process (a request's first
    `labels()` call under the multiprocess value lock, then a collection). So the callback only appends to a
    bounded deque, and the metrics sampler flushes it every few seconds.
    """

    def __init__(self, histogram: Histogram, *, keep: int = 10_000) -> None:
        self._histogram = histogram
        self._started: float | None = None
        self._pending: deque[tuple[int, float]] = deque(maxlen=keep)
        self._children: dict[int, Histogram] = {}

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def flush(self) -> None:
        """Observe the pauses timed since the last flush."""
        while self._pending:
            generation, seconds = self._pending.popleft()
            child = self._children.get(generation)
            if child is None:
                child = self._children[generation] = self._histogram.labels(str(generation))
            child.observe(seconds)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        # No lock, no prometheus_client call, nothing that can wait: see the class docstring.
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self._pending.append((info["generation"], time.perf_counter() - self._started))
            self._started = None
