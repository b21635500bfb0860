"""Uploads nobody confirmed in time: their objects are removed and the log records them as rejected.

Any instance may run it at once: the object's removal is idempotent, and the `media.rejected` event is
appended at `expected_seq=1`, so each upload is recorded expired exactly once (or a confirm that won the
race keeps it). A crash between the removal and the append removes again on the next run — harmlessly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from eventstore.append import Appender
from projections.media import expired_uploads
from projections.streams import media_stream
from schemas.errors import MediaUnavailable, MediaUploadExpired, Unavailable, WrongExpectedSeq
from schemas.events import EventMetadata, MediaRejected
from service.media.store import ObjectStore

log = structlog.get_logger("roomlog.media")


class UploadExpiry:
    """Every `interval` seconds, expire the uploads pending past their `expires_at` (by `clock`)."""

    def __init__(self, pool: asyncpg.Pool, appender: Appender, store: ObjectStore, *,
                 clock: Callable[[], datetime], interval: float = 60.0, batch: int = 100) -> None:
        self._pool, self._appender, self._store = pool, appender, store
        self._clock, self._interval, self._batch = clock, interval, batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._task = asyncio.create_task(self._run(), name="media-expiry")

    async def stop(self) -> None:
        """Stop the background runs (one in progress is cancelled; the next start finishes its work)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self, *, now: datetime) -> int:
        """Expire what is due at `now`; how many uploads this run recorded as expired."""
        expired = 0
        for row in await expired_uploads(self._pool, now=now, limit=self._batch):
            await self._store.delete(row["object_key"])
            event = MediaRejected(media_id=row["media_id"], code=MediaUploadExpired.code,
                                  reason="not confirmed before the upload expired")
            try:
                await self._appender.append(media_stream(row["tenant_id"], row["media_id"]), [event],
                                            tenant_id=row["tenant_id"], metadata=EventMetadata(row["tenant_id"]),
                                            expected_seq=1)
            except WrongExpectedSeq:
                continue  # confirmed or expired by someone else meanwhile
            expired += 1
        return expired

    async def _run(self) -> None:
        while True:
            try:
                while await self.run_once(now=self._clock()) == self._batch:
                    pass
            except (MediaUnavailable, Unavailable, OSError, asyncpg.PostgresError) as exc:
                log.warning("media expiry run failed; trying again later", error=str(exc))
            await asyncio.sleep(self._interval)
