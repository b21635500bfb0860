"""Rebuilding read models from the log: into shadow tables, optionally verified, then swapped in atomically.

The bulk of the log is replayed while appends go on. The last stretch runs with appends held out
(an EXCLUSIVE lock on `streams`, which every append takes a row lock in), so the shadow tables are
complete when they replace the live ones in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from eventstore.read import GlobalReader, read_tenant
from eventstore.types import Connection
from projections.base import LogBatch, Projection, apply_to_batch, decoded_types
from projections.catchup import CATCH_UP_PROJECTIONS, save_checkpoint
from projections.inline import INLINE_PROJECTIONS, apply_all

# Every read model: the inline ones (in the append) and the catch-up ones (behind it).
ALL_PROJECTIONS: tuple[Projection, ...] = (*INLINE_PROJECTIONS, *CATCH_UP_PROJECTIONS)
_CATCH_UP_NAMES = frozenset(p.name for p in CATCH_UP_PROJECTIONS)

SHADOW = "rl_shadow"
RETIRED = "rl_retired"
_SETUP_LOCK = 7_201_002  # keeps two processes from building projections at once
# Each projection statement over a batch's position range is planned for that range and the shadow tables
# as they are by then, not once generically (plan_cache_mode, in _SESSION_SETTINGS): with cached generic plans
# PostgreSQL spent 43 µs per event at 1,000,000 events, with plans per batch 28-31 µs (bench/README.md).
# For building the deferred indexes: the search GIN over 700,000 documents took 4.2 s with PostgreSQL's
# default 64MB and 2.9 s with this.
INDEX_BUILD_MEMORY = "256MB"
# Events per batch. A batch upserts each room's and sender's message counter and each room's activity row once,
# however many of the batch's messages they count: at 20,000 the messages and search statements cost ~25 % less
# backend CPU per event than at 5,000 (bench/README.md). Bigger batches need more work_mem than the default 4MB
# (at 50,000 the messages insert sorted 9 MB on disk), and with the default random_page_cost the planner turned
# the edits' update into a sequential scan of the shadow's messages at 50,000; the log and the shadow are read
# from memory (99.7 % buffer hits in the messages insert at 600,000 events), which 1.1 tells it.
BATCH_SIZE = 20_000
_SESSION_SETTINGS = ("SET synchronous_commit = off; SET plan_cache_mode = force_custom_plan;"
                     " SET work_mem = '64MB'; SET random_page_cost = 1.1")
_RESET_SETTINGS = "RESET synchronous_commit; RESET plan_cache_mode; RESET work_mem; RESET random_page_cost"
# How long the online phase waits at a hole before the locked phase takes over (which sees holes as final).
HOLE_WAIT_SECONDS = 5.0


@dataclass
class ReplayProgress:
    events: int
    position: int
    seconds: float
    # the log's last position when the replay began (the bulk phase's goal), and where a resumed run began
    last_position: int = 0
    resumed_from: int = 0

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
    # the position an interrupted earlier run had reached (0: built from the start)
    resumed_from: int = 0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ReplayProgress], None]

# The shadow's own bookkeeping, committed with every batch: what it is being built for and how far it got.
_STATE_TABLE = f"{SHADOW}.replay_state"


@dataclass
class _State:
    position: int
    events: int
    deferred_indexes: list[str]


async def replay(
    pool: asyncpg.Pool,
    projections: Sequence[Projection] = INLINE_PROJECTIONS,
    *,
    verify: bool = False,
    swap: bool = True,
    batch_size: int = BATCH_SIZE,
    parallel: int = 1,
    on_progress: ProgressCallback | None = None,
) -> ReplayReport:
    """Rebuild `projections` from position 0; compare with the live tables if asked, then swap them in.

    With `parallel` > 1 the projections are split into that many groups, each applied on a connection of
    its own while the next batch is read (the pool needs parallel + 1 connections). An interrupted replay
    (Ctrl-C, SIGKILL, a lost connection) leaves its shadow tables and their position behind; the next
    replay of the same projections carries on from there instead of starting over.
    """
    started = time.perf_counter()
    async with pool.acquire() as conn, contextlib.AsyncExitStack() as stack:
        state = await _prepare_shadow(conn, projections)
        resumed_from = state.position
        reader = GlobalReader(state.position)
        decoded = sorted(decoded_types(projections))
        count = 0
        last_position = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        hole_deadline = time.perf_counter() + HOLE_WAIT_SECONDS
        finished = False
        try:
            # A crash loses at most the last batches of a shadow that is rebuilt anyway.
            await conn.execute(_SESSION_SETTINGS)
            workers: list[Connection] | None = None
            costs: dict[str, float] = {}
            read_ahead: LogBatch | None = None
            while True:
                events = read_ahead if read_ahead is not None else await _read_batch(reader, conn, batch_size, decoded)
                read_ahead = None
                if not events and reader.waiting_at_hole and time.perf_counter() < hole_deadline:
                    # Not caught up: a hole that may be a late commit. Wait it out instead of finishing
                    # the rest of the log under the lock with appends held out.
                    await asyncio.sleep(0.02)
                    continue
                if not events:
                    break
                hole_deadline = time.perf_counter() + HOLE_WAIT_SECONDS
                position = reader.position
                if parallel > 1 and workers is None:
                    # The first batch on `conn` alone, timed, so that the groups split measured work.
                    _add_costs(costs, await _apply_batch_timed(conn, projections, events))
                    workers = await _worker_connections(pool, stack, parallel)
                elif workers is not None:
                    # Groups of about equal cost so far, each on a connection of its own, while the next batch
                    # is read (and decoded) on `conn`. A projection is in one group per batch and batches are
                    # applied one after another, so each projection still sees the log in order.
                    groups = split_by_cost(projections, costs, len(workers))
                    pending = asyncio.ensure_future(_read_batch(reader, conn, batch_size, decoded))
                    try:
                        for spent in await asyncio.gather(
                            *(_apply_batch_timed(c, group, events) for c, group in zip(workers, groups, strict=False))
                        ):
                            _add_costs(costs, spent)
                    except BaseException:
                        pending.cancel()
                        with contextlib.suppress(BaseException):
                            await pending  # `conn` is free again only once the read has ended
                        raise
                    read_ahead = await pending
                else:
                    await _apply_batch(conn, projections, events)
                # After the batch: a crash in between re-applies it on resume, which projections allow.
                await conn.execute(f"UPDATE {_STATE_TABLE} SET position = $1, events = events + $2",
                                   position, len(events))
                count += len(events)
                if on_progress is not None:
                    on_progress(ReplayProgress(count, position, time.perf_counter() - started,
                                               last_position, resumed_from))
            await _create_deferred_indexes(conn, state.deferred_indexes)
            report = ReplayReport([p.name for p in projections], count, 0.0, resumed_from=resumed_from)
            async with conn.transaction():
                await conn.execute("LOCK TABLE streams IN EXCLUSIVE MODE")
                while events := await _read_batch(reader, conn, batch_size, decoded, final=True):
                    await _apply_to_batch(conn, projections, events)
                    report.events += len(events)
                if verify:
                    report.differences = await _compare(conn, projections)
                if swap:
                    await _swap(conn, projections, reader.position)
                    report.swapped = True
            finished = True
        finally:
            if finished:
                await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            await conn.execute(f"RESET search_path; {_RESET_SETTINGS}")
            # Statements prepared here resolved names in the shadow schema: drop them with the connection's cache.
            await conn.reload_schema_state()
    report.seconds = time.perf_counter() - started
    if on_progress is not None:
        on_progress(ReplayProgress(report.events, reader.position, report.seconds, last_position, resumed_from))
    return report


async def _read_batch(
    reader: GlobalReader, conn: Connection, limit: int, decoded: list[str], *, final: bool = False
) -> LogBatch:
    after = reader.position
    # Only the payloads some projection decodes: the SQL projections read theirs from `events` by position range.
    rows = await reader.read_rows(conn, limit=limit, final=final, payload_types=decoded)
    return LogBatch(rows, after=after, until=reader.position)


async def _apply_batch(conn: Connection, projections: Sequence[Projection], batch: LogBatch) -> None:
    async with conn.transaction():
        await _apply_to_batch(conn, projections, batch)


async def _apply_to_batch(conn: Connection, projections: Sequence[Projection], batch: LogBatch) -> None:
    """Each projection in turn: statement projections over the batch's range, the rest over its decoded events."""
    for projection in projections:
        await apply_to_batch(conn, projection, batch)


async def _apply_batch_timed(conn: Connection, projections: Sequence[Projection], batch: LogBatch) -> dict[str, float]:
    """Apply a batch like `_apply_batch`, returning the seconds each projection took."""
    costs: dict[str, float] = {}
    async with conn.transaction():
        for projection in projections:
            began = time.perf_counter()
            await apply_to_batch(conn, projection, batch)
            costs[projection.name] = time.perf_counter() - began
    return costs


def split_by_cost(projections: Sequence[Projection], costs: dict[str, float], groups: int) -> list[list[Projection]]:
    """`groups` groups of about equal cost (the costliest first, each to the group with the least so far); each
    group keeps the projections in their given order, which is log order within a connection."""
    loads = [0.0] * max(1, min(groups, len(projections)))
    members: list[set[str]] = [set() for _ in loads]
    for projection in sorted(projections, key=lambda p: -costs.get(p.name, 0.0)):
        lightest = loads.index(min(loads))
        members[lightest].add(projection.name)
        loads[lightest] += costs.get(projection.name, 0.0)
    return [[p for p in projections if p.name in names] for names in members if names]


def _add_costs(costs: dict[str, float], spent: dict[str, float]) -> None:
    for name, seconds in spent.items():
        costs[name] = costs.get(name, 0.0) + seconds


async def _worker_connections(pool: asyncpg.Pool, stack: contextlib.AsyncExitStack, parallel: int) -> list[Connection]:
    """`parallel` connections set up like `conn`, released (and reset) when the replay ends."""
    workers: list[Connection] = []
    for _ in range(parallel):
        worker = await stack.enter_async_context(pool.acquire())
        stack.push_async_callback(_reset, worker)
        await worker.execute(f"SET search_path = {SHADOW}, public; {_SESSION_SETTINGS}")
        workers.append(worker)
    return workers


async def _reset(conn: Connection) -> None:
    await conn.execute(f"RESET search_path; {_RESET_SETTINGS}")
    await conn.reload_schema_state()


async def discard_shadow(conn: Connection) -> None:
    """Throw away an interrupted replay's shadow tables (after the log was rewritten: erasure)."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")


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


async def _prepare_shadow(conn: Connection, projections: Sequence[Projection]) -> _State:
    """The shadow to build into: the one an interrupted replay of the same projections left, or a new one."""
    key = [f"{p.name}:{p.version}" for p in projections]
    left = await conn.fetchrow(
        f"SELECT projections, position, events, deferred_indexes FROM {_STATE_TABLE}"
    ) if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", _STATE_TABLE) else None
    # Unqualified names resolve to the shadow tables first; `events` still comes from public.
    if left is not None and list(left["projections"]) == key:
        await conn.execute(f"SET search_path = {SHADOW}, public")
        return _State(left["position"], left["events"], list(left["deferred_indexes"]))
    await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE; CREATE SCHEMA {SHADOW}")
    await conn.execute(f"SET search_path = {SHADOW}, public")
    for projection in projections:
        await conn.execute(projection.ddl)
    deferred = await _defer_indexes(conn)
    await conn.execute(
        f"CREATE TABLE {_STATE_TABLE} (projections text[] NOT NULL, position bigint NOT NULL, events bigint NOT NULL,"
        " deferred_indexes text[] NOT NULL)"
    )
    await conn.execute(f"INSERT INTO {_STATE_TABLE} VALUES ($1, 0, 0, $2)", key, deferred)
    return _State(0, 0, deferred)


# Secondary indexes (neither unique nor primary: no ON CONFLICT relies on them) are built once, after the
# bulk of the log, instead of row by row: the search index's GIN above all.
_SECONDARY_INDEXES = f"""
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '{SHADOW}' AND NOT i.indisunique AND NOT i.indisprimary
"""


async def _defer_indexes(conn: Connection) -> list[str]:
    definitions = [r[0] for r in await conn.fetch(_SECONDARY_INDEXES)]
    for definition in definitions:
        name = definition.split(" ON ", 1)[0].rsplit(" ", 1)[1]
        await conn.execute(f"DROP INDEX {SHADOW}.{name}")
    return definitions


async def _create_deferred_indexes(conn: Connection, definitions: list[str]) -> None:
    for definition in definitions:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            await conn.execute(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))


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
