"""Catch-up projections: read models that follow the global log a moment behind the appends.

What may lag a little (the search index) is kept out of the append transaction, so it never slows a
send. One runner per projection leads at a time (a PostgreSQL advisory lock, so any instance can take
over), woken by the appends' NOTIFY. Each batch is applied in one transaction together with the
projection's checkpoint (`projection_checkpoints`), so every event takes effect exactly once, across
crashes and restarts. `roomlog replay` rebuilds them like the inline ones and sets their checkpoint in
the swap's transaction; the runner re-reads its checkpoint every batch, so it carries on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence

import asyncpg
import structlog

from eventstore.append import NOTIFY_CHANNEL, record_from_row
from eventstore.read import GlobalReader
from eventstore.types import Connection, Queryable
from projections.base import Projection
from projections.search import SearchProjection

log = structlog.get_logger("roomlog.catchup")

CATCH_UP_PROJECTIONS: tuple[Projection, ...] = (SearchProjection(),)
_LOCK_BASE = 7_202_000
# How long a stopping instance lets its runners finish what is committed.
STOP_SECONDS = 5.0


async def checkpoint_of(conn: Connection, name: str) -> int:
    """How far the projection has applied the log (0 when it never ran)."""
    position = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", name)
    return int(position or 0)


async def save_checkpoint(conn: Connection, name: str, position: int) -> None:
    await conn.execute(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
        name, position,
    )


async def events_behind(conn: Queryable) -> dict[str, int]:
    """Per catch-up projection: committed events it has not applied yet."""
    rows = await conn.fetch(
        "SELECT p.name, greatest((SELECT coalesce(max(position), 0) FROM events) - coalesce(c.position, 0), 0)"
        " AS behind FROM unnest($1::text[]) AS p(name) LEFT JOIN projection_checkpoints c ON c.name = p.name",
        [p.name for p in CATCH_UP_PROJECTIONS],
    )
    return {r["name"]: r["behind"] for r in rows}


class CatchUpRunner:
    """Applies the log to one catch-up projection, for ever, while this instance holds its lock."""

    def __init__(self, database_url: str, projection: Projection, *, batch_size: int = 1000,
                 idle_wait: float = 1.0) -> None:
        self._database_url = database_url
        self.projection = projection
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._wake = asyncio.Event()
        self._reader: GlobalReader | None = None
        self._stopping = False
        self.is_leader = False

    async def run(self) -> None:
        """Lead when the lock is free, apply, and start over after any failure; return once stopped."""
        while True:
            try:
                await self._lead()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catch-up projection failed; retrying", projection=self.projection.name)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        lock = _LOCK_BASE + zlib.crc32(self.projection.name.encode()) % 1000
        try:
            self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock)
            while not self.is_leader:
                if self._stopping:
                    return
                await asyncio.sleep(1.0)  # another instance runs it; take over when its lock goes
                self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock)
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            log.info("catch-up projection leading", projection=self.projection.name)
            self._reader = None  # a new leader starts from the stored checkpoint
            while True:
                self._wake.clear()
                read = await self.apply_next(conn)
                if read < self._batch_size:  # caught up or at a hole: wait for the next commit
                    if self._stopping:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    async def apply_next(self, conn: Connection) -> int:
        """Apply the next batch of the log in one transaction with the checkpoint; the number of events read."""
        name = self.projection.name
        async with conn.transaction():
            # The row lock orders this batch against a replay that swaps the tables and moves the checkpoint.
            position = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", name
            )
            if self._reader is None or self._reader.position != (position or 0):
                # First batch, or a replay rebuilt the projection meanwhile: carry on from the checkpoint.
                self._reader = GlobalReader(position or 0)
            reader = self._reader
            rows = await reader.read_rows(conn, limit=self._batch_size)
            mine = [record_from_row(r) for r in rows if r["type"] in self.projection.handles]
            if mine:
                await self.projection.apply(conn, mine)
            if rows or position is None:
                await save_checkpoint(conn, name, reader.position)
        return len(rows)

    def stop_when_caught_up(self) -> None:
        """Finish what is committed, then return from `run`."""
        self._stopping = True
        self._wake.set()

    def _notified(self, *args: object) -> None:
        self._wake.set()


class CatchUp:
    """Every catch-up projection's runner, as background tasks."""

    def __init__(self, database_url: str, projections: Sequence[Projection] = CATCH_UP_PROJECTIONS) -> None:
        self.runners = [CatchUpRunner(database_url, p) for p in projections]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(), name=f"catch-up-{r.projection.name}") for r in self.runners]

    async def stop(self) -> None:
        """Let each runner apply what is committed (so a clean stop leaves them current), then end them."""
        for runner in self.runners:
            runner.stop_when_caught_up()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
