"""The SLA breach timer: records `sla.at_risk` and `sla.breached` at the instants the open clocks name.

Every instance runs one. It sleeps until the earliest `next_at` of the `sla_clocks` read model and is woken
early by the NOTIFY of every transaction that changed a clock (started or moved elsewhere; other appends do not
wake it), so a breach is recorded when it falls due, not at the next pass of a polling window. A pass takes the
due clocks' streams in batches, each in one transaction: it locks the streams (SKIP LOCKED: those another
instance's timer holds are left to it), reads their clocks, and appends every stream's records at the seq read,
with one statement. Nothing can be appended to a locked stream in between, and a record already made is no
longer due, so each at-risk and breach is recorded once however many instances run and however often they
restart (a refused append, if any, is simply due again at the next pass).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from eventstore.append import Appender, AppendRequest, AppendResult
from projections.sla_clocks import CLOCKS_CHANNEL, due_clocks_of, fetch_clock, lock_due_streams, next_instant
from schemas.errors import WrongExpectedSeq
from schemas.events import EventMetadata, SlaAtRisk, SlaBreached
from service.domain.support.sla import timer_events

log = structlog.get_logger(__name__)
TIMER_ACTOR = "sla-timer"
RECORD_ATTEMPTS = 5
# Longest sleep without a wake-up; only bounds the damage of a lost NOTIFY (a reconnect), never a window.
IDLE_SECONDS = 300.0
RETRY_SECONDS = 0.01
# Streams whose due records one transaction appends, and how many such transactions a pass runs at once.
BATCH_STREAMS = 250
PARALLEL_BATCHES = 2


def _timer_events(clock: asyncpg.Record, now: datetime) -> list[SlaAtRisk | SlaBreached]:
    return timer_events(clock_id=clock["clock_id"], metric=clock["metric"], due_at=clock["due_at"],
                        at_risk_at=clock["at_risk_at"], at_risk_recorded=clock["at_risk_recorded"],
                        breached=clock["breached_at"] is not None, stopped=clock["stopped"], now=now)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BreachTimer:
    """Records each open clock's at-risk and breach when due (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, appender: Appender, database_url: str, *,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._database_url = database_url
        self._appender = appender
        self._now = now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self.recorded = 0

    async def start(self) -> None:
        """Listen for clock changes and start the timer task."""
        self._listener = await asyncpg.connect(self._database_url)
        await self._listener.add_listener(CLOCKS_CHANNEL, lambda *_: self._wake.set())
        self._task = asyncio.create_task(self._run(), name="sla-breach-timer")

    async def stop(self) -> None:
        """Stop the task and the listening connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()

    async def _run(self) -> None:
        while True:
            # Cleared before the pass: a clock that changes while it runs wakes the next one at once.
            self._wake.clear()
            try:
                await self.fire_due()
                upcoming = await next_instant(self._pool)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sla timer pass failed")
                upcoming = None
            # Something still due after a pass lost every race for it: retry soon, not in a busy loop.
            delay = IDLE_SECONDS if upcoming is None else max(RETRY_SECONDS,
                                                               (upcoming - self._now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, IDLE_SECONDS))

    async def fire_due(self) -> int:
        """Record everything due by now; how many events were appended."""
        appended = 0
        while True:
            # Batches side by side: SKIP LOCKED hands each its own streams, and the database works on them at once.
            batches = await asyncio.gather(*(self._fire_batch() for _ in range(PARALLEL_BATCHES)))
            appended += sum(done for _, done in batches)
            # Done when a batch found fewer than it could take, or when nothing could be appended (try next pass).
            if any(found < BATCH_STREAMS for found, _ in batches) or not any(done for _, done in batches):
                return appended

    async def _fire_batch(self) -> tuple[int, int]:
        """Record what is due on up to BATCH_STREAMS streams in one transaction: (streams taken, events appended).

        The streams are locked first (skipping those another instance's timer or an append holds), so the clocks
        read next cannot move before the records are appended, and instances split a burst instead of racing for
        it; every stream's due records are one request at the seq read.
        """
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            streams = await lock_due_streams(conn, now, limit=BATCH_STREAMS)
            if not streams:
                return 0, 0
            by_stream: dict[str, list[SlaAtRisk | SlaBreached]] = {}
            clocks: dict[str, asyncpg.Record] = {}
            for clock in await due_clocks_of(conn, streams, now):
                by_stream.setdefault(clock["stream_id"], []).extend(_timer_events(clock, now))
                clocks[clock["stream_id"]] = clock
            requests = [AppendRequest(stream_id, clocks[stream_id]["tenant_id"], events,
                                      EventMetadata(tenant_id=clocks[stream_id]["tenant_id"], actor=TIMER_ACTOR),
                                      expected_seq=int(clocks[stream_id]["last_seq"]))
                        for stream_id, events in by_stream.items() if events]
            outcomes = await self._appender.append_each(conn, requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            if not isinstance(outcome, AppendResult):
                log.warning("sla timer record refused", stream_id=request.stream_id, error=str(outcome))
        done = sum(len(o.events) for o in outcomes if isinstance(o, AppendResult))
        self.recorded += done
        return len(streams), done

    async def record(self, stream_id: str, clock_id: str) -> int:
        """Append what one clock calls for now at the seq read with it; 0 when nothing (or another did it)."""
        row = await fetch_clock(self._pool, stream_id, clock_id)
        return 0 if row is None else await self._record_row(row)

    async def _record_row(self, clock: asyncpg.Record) -> int:
        for _ in range(RECORD_ATTEMPTS):
            events = _timer_events(clock, self._now())
            if not events:
                return 0
            try:
                await self._appender.append(clock["stream_id"], events, tenant_id=clock["tenant_id"],
                                            metadata=EventMetadata(tenant_id=clock["tenant_id"], actor=TIMER_ACTOR),
                                            expected_seq=int(clock["last_seq"]))
            except WrongExpectedSeq:
                # Another instance recorded it, or the clock moved: read again.
                again = await fetch_clock(self._pool, clock["stream_id"], clock["clock_id"])
                if again is None:
                    return 0
                clock = again
                continue
            self.recorded += len(events)
            return len(events)
        log.warning("sla timer kept losing races for a clock", stream_id=clock["stream_id"],
                    clock_id=clock["clock_id"])
        return 0
