"""Following the global log on one instance at a time: what the relay and the catch-up projections share.

A follower leads while it holds a PostgreSQL advisory lock on its own connection (the others wait to
take over when that connection goes), is woken by the appends' NOTIFY, and works through the log a
batch at a time from its own checkpoint. Any failure ends the lead; it starts over from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from eventstore.append import NOTIFY_CHANNEL

log = structlog.get_logger("roomlog.follower")

RETRY_SECONDS = 1.0


class LogFollower:
    """Base of a log follower: subclasses say what leading starts with and what one batch does."""

    def __init__(self, database_url: str, *, lock: int, batch_size: int, idle_wait: float, gather: float = 0.0) -> None:
        self._database_url = database_url
        self._lock = lock
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        # Once caught up, how long a wake-up waits for more commits before the next batch: a follower that may lag
        # trades that much delay for batches of many events instead of one or two per commit.
        self._gather = gather
        self._wake = asyncio.Event()
        self._stopping = False
        self.is_leader = False

    async def run(self) -> None:
        """Lead when the lock is free and follow the log; start over after any failure; return once stopped."""
        while True:
            try:
                await self._lead()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database (or NATS) trouble: come back from the checkpoint, never die quietly
                self.interrupted(exc)
                self.is_leader = False
                await asyncio.sleep(RETRY_SECONDS)

    def stop_when_caught_up(self) -> None:
        """Finish what is committed, then return from `run`."""
        self._stopping = True
        self._wake.set()

    async def started_leading(self, conn: asyncpg.Connection) -> None:
        """Called once the lock is held, before the first batch."""

    async def follow_once(self, conn: asyncpg.Connection) -> int:
        """Work through the next batch of the log; return how many events it read."""
        raise NotImplementedError

    async def stopped_leading(self) -> None:
        """Called when a lead ends, however it ends."""

    def interrupted(self, exc: Exception) -> None:
        """Report a failure that ended the lead."""
        log.warning("log follower interrupted, resuming from its checkpoint", follower=type(self).__name__,
                    error=repr(exc))

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock)
            while not self.is_leader:
                if self._stopping:
                    return
                await asyncio.sleep(RETRY_SECONDS)  # another instance leads; take over when its lock goes
                self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock)
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            await self.started_leading(conn)
            while True:
                self._wake.clear()
                read = await self.follow_once(conn)
                if read < self._batch_size:  # caught up, or at a hole: wait for the next commit
                    if self._stopping:
                        return
                    # A commit during the batch has set the wake already: no read in vain.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
                        if self._gather and not self._stopping:
                            await asyncio.sleep(self._gather)
        finally:
            self.is_leader = False
            await self.stopped_leading()
            with contextlib.suppress(Exception):
                await conn.close()

    def _notified(self, *args: object) -> None:
        self._wake.set()
