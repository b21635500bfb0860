"""Reads of history on hot standbys that have caught up, else on the primary: the one place reads are routed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import asyncpg
import structlog

log = structlog.get_logger("roomlog.replicas")

# A position in the WAL as a number (bytes since 0/0), so that positions compare without a pg_lsn codec.
_PRIMARY_LSN = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
_REPLAYED_LSN = """
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END
        - '0/0'::pg_lsn)::bigint
"""
# A standby that cannot answer this quickly is treated as behind: the primary serves the read.
_REPLICA_CHECK_SECONDS = 1.0


class ReadPools:
    """The primary's pool and the standbys' pools; `for_read` picks one that may serve a read of history.

    A read may go to a standby only once that standby has replayed the primary's WAL up to where the
    primary's WAL was when the read began. Every write acknowledged before then (a 201 with its seq, an
    event delivered over a WebSocket, both only after commit) has its commit record below that point, so
    a client is never served less than it was already told, whichever instance told it. Writes, and reads
    that decide a write, use `primary` directly.
    """

    def __init__(self, primary: asyncpg.Pool, replicas: Sequence[asyncpg.Pool] = ()) -> None:
        self.primary = primary
        self.replicas = tuple(replicas)
        # Highest replay position seen per standby: replay only moves forward, so a read that needs no
        # more than this skips the check.
        self._replayed = [0] * len(self.replicas)
        self._turn = itertools.count()
        self._sampling: asyncio.Future[int] | None = None
        self._pending: asyncio.Future[int] | None = None
        self.replica_reads = 0
        self.primary_reads = 0
        self.fallbacks = 0  # reads that went to the primary because every standby was behind or away

    async def for_read(self) -> asyncpg.Pool:
        """A pool whose data includes every write committed before this call: a caught-up standby, else the primary."""
        if not self.replicas:
            self.primary_reads += 1
            return self.primary
        required = await self.primary_lsn()
        start = next(self._turn)
        for i in range(len(self.replicas)):
            index = (start + i) % len(self.replicas)
            if await self._replayed_at_least(index, required):
                self.replica_reads += 1
                return self.replicas[index]
        self.fallbacks += 1
        self.primary_reads += 1
        return self.primary

    async def primary_lsn(self) -> int:
        """The primary's WAL position, sampled after this call began; concurrent callers share one query."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._sample(self._sampling))
        return await asyncio.shield(self._pending)

    async def _sample(self, previous: asyncio.Future[int] | None) -> int:
        if previous is not None:
            await asyncio.wait([previous])
        # From here on a new caller may have arrived after this query was sent: it waits for the next one.
        self._sampling, self._pending = self._pending, None
        lsn: int = await self.primary.fetchval(_PRIMARY_LSN)
        return lsn

    async def _replayed_at_least(self, index: int, required: int) -> bool:
        if self._replayed[index] >= required:
            return True
        try:
            lsn = await asyncio.wait_for(self.replicas[index].fetchval(_REPLAYED_LSN), _REPLICA_CHECK_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("replica unavailable", replica=index, error=repr(exc))
            return False
        if lsn is None:  # a standby that has not replayed anything yet
            return False
        self._replayed[index] = max(self._replayed[index], lsn)
        return bool(lsn >= required)

    async def close(self) -> None:
        """Close the standbys' pools (the primary's belongs to the runtime)."""
        await asyncio.gather(*(asyncio.wait_for(p.close(), 10) for p in self.replicas), return_exceptions=True)


async def open_replicas(urls: str | None, *, max_size: int) -> list[asyncpg.Pool]:
    """Pools for the comma-separated standby URLs; they connect on first use, so a standby that is down
    does not keep the service from starting."""
    return [await asyncpg.create_pool(url.strip(), min_size=0, max_size=max_size)
            for url in (urls or "").split(",") if url.strip()]
