"""The hub's feed while NATS is away: the global log in PostgreSQL, read by this instance itself.

Without it a NATS outage would silently stop live delivery: the relay cannot publish and the hub's
subscriptions hear nothing. Telling every client to resync would not help either — they would
reconnect, catch up and then hear nothing again. So while NATS is disconnected each instance follows
the log (from where it stood when NATS went away; every connection first re-reads its rooms) and
dispatches each committed event exactly as if NATS had brought it; connections drop what they have
and fill gaps from the log, so the overlap with NATS on either side costs nothing. Once NATS is back
the feed stops and the connections re-read their rooms once more.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from eventstore.read import GlobalReader
from service.realtime.hub import Hub

log = structlog.get_logger("roomlog.logfeed")

POLL_SECONDS = 0.2
PAGE = 1000


class LogFeed:
    """Follows the global log into the hub between `start()` and `stop()`."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._pool = pool
        self._hub = hub
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin following the log (no-op when already following)."""
        if not self.running:
            log.warning("nats is away: delivering live events from the log")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="log-feed")

    async def stop(self) -> None:
        """Stop following the log."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _run(self) -> None:
        reader: GlobalReader | None = None
        while True:
            try:
                if reader is None:
                    reader = GlobalReader(await self._pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
                    # What NATS had not brought yet when it went away comes from the rooms' logs.
                    for conn in self._hub.connections():
                        conn.offer_resume()
                async with self._pool.acquire() as db:
                    events = await reader.read(db, limit=PAGE)
                for event in events:
                    await self._hub.take(event)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("reading the log for live delivery failed, retrying", error=repr(exc))
                events = []
            if len(events) < PAGE:
                await asyncio.sleep(self._poll)
