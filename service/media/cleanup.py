"""Removing media objects nobody needs: uploads nobody confirmed in time, and media whose messages are all deleted.

Both follow the read models' state, not a position in the log, so a run that crashed is simply done again:
removing an object twice is harmless, and the event that records the outcome is appended at the upload
stream's expected seq (`media.rejected` at 1, `media.removed` at 2), so each upload is recorded expired
or removed exactly once however many runs or instances race (and a confirm that won the race keeps it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from eventstore.append import Appender
from projections.media import detached_media, expired_uploads
from projections.streams import media_stream
from schemas.errors import MediaUnavailable, MediaUploadExpired, Unavailable, WrongExpectedSeq
from schemas.events import Event, EventMetadata, MediaRejected, MediaRemoved
from service.domain.media import media_key
from service.media.store import ObjectStore
from service.periodic import Periodic


class MediaCleanup:
    """Every `interval` seconds: expire the uploads pending past `expires_at` (by `clock`), remove detached media."""

    def __init__(self, pool: asyncpg.Pool, appender: Appender, store: ObjectStore, *,
                 clock: Callable[[], datetime], interval: float = 60.0, batch: int = 100) -> None:
        self._pool, self._appender, self._store = pool, appender, store
        self._clock, self._interval, self._batch = clock, interval, batch
        self._periodic = Periodic("media-expiry", self._step, interval=interval,
                                  expected=(MediaUnavailable, Unavailable, OSError, asyncpg.PostgresError))

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop the background runs (one in progress is cancelled; the next run finishes its work)."""
        await self._periodic.stop()

    async def run_once(self, *, now: datetime) -> int:
        """Expire what is due at `now`; how many uploads this run recorded as expired."""
        expired = 0
        for row in await expired_uploads(self._pool, now=now, limit=self._batch):
            await self._store.delete(row["object_key"])
            event = MediaRejected(media_id=row["media_id"], code=MediaUploadExpired.code,
                                  reason="not confirmed before the upload expired")
            # else confirmed or expired by someone else meanwhile
            expired += await self._record(row["tenant_id"], row["media_id"], event, expected_seq=1)
        return expired

    async def remove_detached(self) -> int:
        """Remove the objects of media whose every message is deleted or whose uploader's content was erased; how many
        this run recorded removed."""
        removed = 0
        for row in await detached_media(self._pool, limit=self._batch):
            await self._store.delete(media_key(row["tenant_id"], row["media_id"], row["sha256"]))
            if row["thumbnail_key"] is not None:
                await self._store.delete(row["thumbnail_key"])
            reason = ("its uploader's content was erased" if row["erased"]
                      else "every message it was attached to was deleted")
            event = MediaRemoved(media_id=row["media_id"], reason=reason)
            removed += await self._record(row["tenant_id"], row["media_id"], event, expected_seq=2)
        return removed

    async def _record(self, tenant_id: str, media_id: str, event: Event, *, expected_seq: int) -> int:
        try:
            await self._appender.append(media_stream(tenant_id, media_id), [event], tenant_id=tenant_id,
                                        metadata=EventMetadata(tenant_id), expected_seq=expected_seq)
        except WrongExpectedSeq:
            return 0
        return 1

    async def _step(self) -> None:
        while await self.run_once(now=self._clock()) == self._batch:
            pass
        while await self.remove_detached() == self._batch:
            pass
