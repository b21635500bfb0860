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
import zlib
from collections.abc import Sequence

import asyncpg
import structlog

from eventstore.follower import LogFollower
from eventstore.read import GlobalReader
from eventstore.types import Connection, Queryable
from projections.base import LogBatch, Projection, apply_to_batch, decoded_types
from projections.kb import KbSearchProjection
from projections.search import SearchProjection
from projections.support_analytics import SupportAnalyticsProjection

log = structlog.get_logger("roomlog.catchup")

CATCH_UP_PROJECTIONS: tuple[Projection, ...] = (SearchProjection(), KbSearchProjection(),
                                                 SupportAnalyticsProjection())
_LOCK_BASE = 7_202_000
# How long a stopping instance lets its runners finish what is committed.
STOP_SECONDS = 5.0
# After a commit wakes a caught-up runner it waits this long for more: under load a batch per commit cost each
# runner a transaction of five statements for one or two events (14.7 % of the service's CPU in a send benchmark's
# profile); the index lags by at most this much more.
GATHER_SECONDS = 0.05


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


class CatchUpRunner(LogFollower):
    """Applies the log to one catch-up projection, for ever, while this instance holds its lock."""

    def __init__(self, database_url: str, projection: Projection, *, batch_size: int = 1000,
                 idle_wait: float = 1.0, gather: float = GATHER_SECONDS) -> None:
        lock = _LOCK_BASE + zlib.crc32(projection.name.encode()) % 1000
        super().__init__(database_url, lock=lock, batch_size=batch_size, idle_wait=idle_wait, gather=gather)
        self.projection = projection
        self._payloads = sorted(decoded_types([projection]))
        self._reader: GlobalReader | None = None

    async def started_leading(self, conn: asyncpg.Connection) -> None:
        self._reader = None  # a new leader starts from the stored checkpoint
        log.info("catch-up projection leading", projection=self.projection.name)

    def interrupted(self, exc: Exception) -> None:
        log.exception("catch-up projection failed; retrying", projection=self.projection.name)

    async def follow_once(self, conn: Connection) -> int:
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
            after = reader.position
            rows = await reader.read_rows(conn, limit=self._batch_size, payload_types=self._payloads)
            # Every position of (after, reader.position] is in `rows` and committed (the reader stops at holes),
            # so statements over that range of `events` see exactly these events: the search index and the
            # analytics facts take the messages from there, without decoding each one here.
            if rows:
                await apply_to_batch(conn, self.projection, LogBatch(rows, after=after, until=reader.position))
            if rows or position is None:
                await save_checkpoint(conn, name, reader.position)
        return len(rows)


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
