"""A background job that runs one step every few seconds on every instance until it is stopped.

Retention, media cleanup and ticket auto-close all work this way: each step decides from the read models
what is due and appends under conditions that make a second instance's (or a rerun's) append harmless,
so the job keeps no position of its own and a failed step is simply tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog


class Periodic:
    """`step()` every `interval` seconds in a task of its own, from `start()` until `stop()`.

    A step that fails with one of `expected` (the database or a store being away) is logged as a warning, any
    other failure with its traceback; either way the loop carries on.
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[object]], *, interval: float,
                 expected: tuple[type[BaseException], ...] = ()) -> None:
        self.name, self._step, self._interval, self._expected = name, step, interval, expected
        self._log = structlog.get_logger(f"roomlog.{name}")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """End the loop (a step in progress is cancelled; the next start finishes its work)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except self._expected as exc:
                self._log.warning(f"{self.name} run failed; trying again later", error=str(exc))
            except Exception:
                self._log.exception(f"{self.name} run failed; trying again later")
            await asyncio.sleep(self._interval)
