"""Rebuilding read models from the log: into shadow tables, optionally verified, then swapped in atomically.

The bulk of the log is replayed while appends go on. The last stretch runs with appends held out
(an EXCLUSIVE lock on `streams`, which every append takes a row lock in), so the shadow tables are
complete when they replace the live ones in the same transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from eventstore.read import GlobalReader, read_tenant
from eventstore.types import Connection
from projections.base import Projection
from projections.catchup import CATCH_UP_PROJECTIONS, save_checkpoint
from projections.inline import INLINE_PROJECTIONS, apply_all

# Every read model: the inline ones (in the append) and the catch-up ones (behind it).
ALL_PROJECTIONS: tuple[Projection, ...] = (*INLINE_PROJECTIONS, *CATCH_UP_PROJECTIONS)
_CATCH_UP_NAMES = frozenset(p.name for p in CATCH_UP_PROJECTIONS)

SHADOW = "rl_shadow"
RETIRED = "rl_retired"
_SETUP_LOCK = 7_201_002  # keeps two processes from building projections at once
# How long the online phase waits at a hole before the locked phase takes over (which sees holes as final).
HOLE_WAIT_SECONDS = 5.0


@dataclass
class ReplayProgress:
    events: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ReplayReport:
    projections: list[str]
    events: int
    seconds: float
    # table -> rows that differ between the rebuilt and the live table (only with verify=True)
    differences: dict[str, int] = field(default_factory=dict)
    swapped: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ReplayProgress], None]


async def replay(
    pool: asyncpg.Pool,
    projections: Sequence[Projection] = INLINE_PROJECTIONS,
    *,
    verify: bool = False,
    swap: bool = True,
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
) -> ReplayReport:
    """Rebuild `projections` from position 0; compare with the live tables if asked, then swap them in."""
    started = time.perf_counter()
    reader = GlobalReader(0)
    count = 0
    hole_deadline = time.perf_counter() + HOLE_WAIT_SECONDS
    async with pool.acquire() as conn:
        await _prepare_shadow(conn, projections)
        try:
            while True:
                events = await reader.read(conn, limit=batch_size)
                if not events and reader.waiting_at_hole and time.perf_counter() < hole_deadline:
                    # Not caught up: a hole that may be a late commit. Wait it out instead of finishing
                    # the rest of the log under the lock with appends held out.
                    await asyncio.sleep(0.02)
                    continue
                if not events:
                    break
                hole_deadline = time.perf_counter() + HOLE_WAIT_SECONDS
                async with conn.transaction():
                    await apply_all(conn, projections, events)
                count += len(events)
                if on_progress is not None:
                    on_progress(ReplayProgress(count, reader.position, time.perf_counter() - started))
            report = ReplayReport([p.name for p in projections], count, 0.0)
            async with conn.transaction():
                await conn.execute("LOCK TABLE streams IN EXCLUSIVE MODE")
                while events := await reader.read(conn, limit=batch_size, final=True):
                    await apply_all(conn, projections, events)
                    report.events += len(events)
                if verify:
                    report.differences = await _compare(conn, projections)
                if swap:
                    await _swap(conn, projections, reader.position)
                    report.swapped = True
        finally:
            await conn.execute(f"RESET search_path; DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            # Statements prepared here resolved names in the shadow schema: drop them with the connection's cache.
            await conn.reload_schema_state()
    report.seconds = time.perf_counter() - started
    if on_progress is not None:
        on_progress(ReplayProgress(report.events, reader.position, report.seconds))
    return report


async def apply_tenant(
    conn: Connection,
    tenant_id: str,
    *,
    after_position: int,
    projections: Sequence[Projection] = ALL_PROJECTIONS,
    batch_size: int = 5000,
) -> int:
    """Fold one tenant's events after `after_position` into the live read models, in log order; how many.

    For an import: the tenant's read models hold nothing of those events yet, and appending to its
    streams waits for the import's transaction, which the caller holds.
    """
    count = 0
    while events := await read_tenant(conn, tenant_id, after_position=after_position, limit=batch_size):
        await apply_all(conn, projections, events)
        count += len(events)
        after_position = events[-1].position
    return count


def projection_by_name(name: str) -> Projection:
    """The projection (inline or catch-up) called `name`; KeyError when there is none."""
    for projection in ALL_PROJECTIONS:
        if projection.name == name:
            return projection
    raise KeyError(name)


async def ensure_projections(pool: asyncpg.Pool, projections: Sequence[Projection] = ALL_PROJECTIONS) -> list[str]:
    """Build every projection whose live tables are missing or of another version; return their names."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _SETUP_LOCK)
        try:
            rows = await conn.fetch("SELECT name, version FROM projection_versions")
            current = {r["name"]: r["version"] for r in rows}
            stale = [p for p in projections if current.get(p.name) != p.version]
            if stale:
                await replay(pool, stale)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SETUP_LOCK)
    return [p.name for p in stale]


async def _prepare_shadow(conn: Connection, projections: Sequence[Projection]) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE; CREATE SCHEMA {SHADOW}")
    # Unqualified names now resolve to the shadow tables first; `events` still comes from public.
    await conn.execute(f"SET search_path = {SHADOW}, public")
    for projection in projections:
        await conn.execute(projection.ddl)


async def _compare(conn: Connection, projections: Sequence[Projection]) -> dict[str, int]:
    differences = {}
    for projection in projections:
        for table in projection.tables:
            if not await _live_table_exists(conn, table):
                differences[table] = await conn.fetchval(f"SELECT count(*) FROM {SHADOW}.{table}")
                continue
            differences[table] = await conn.fetchval(
                f"SELECT count(*) FROM ((TABLE {SHADOW}.{table} EXCEPT ALL TABLE public.{table})"
                f" UNION ALL (TABLE public.{table} EXCEPT ALL TABLE {SHADOW}.{table})) AS d"
            )
    return differences


async def _swap(conn: Connection, projections: Sequence[Projection], position: int) -> None:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RETIRED}")
    for projection in projections:
        for table in projection.tables:
            if await _live_table_exists(conn, table):
                await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA {RETIRED}")
                await conn.execute(f"DROP TABLE {RETIRED}.{table}")
            await conn.execute(f"ALTER TABLE {SHADOW}.{table} SET SCHEMA public")
        await conn.execute(
            "INSERT INTO projection_versions (name, version) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, built_at = now()",
            projection.name, projection.version,
        )
        if projection.name in _CATCH_UP_NAMES:
            # Its runner re-reads this under a row lock before each batch, and carries on from here.
            await save_checkpoint(conn, projection.name, position)


async def _live_table_exists(conn: Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"))
