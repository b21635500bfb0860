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
from typing import Any

from prometheus_client import Histogram


def freeze_startup_heap() -> None:
    """Collect what start-up left, then move every surviving object out of the collector's generations."""
    gc.collect()
    gc.freeze()


class GcPauses:
    """Observes each collection's duration, by generation, while installed."""

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._started: float | None = None

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self._histogram.labels(str(info["generation"])).observe(time.perf_counter() - self._started)
            self._started = None
