"""Open SLA clocks read model: per clock its due and at-risk instants and what the timer recorded, and the next
instant the timer must act at (`next_at`, null once the clock is stopped, breached or paused)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent, SlaAtRisk, SlaBreached, SlaClockStarted, SlaClockStopped, SlaClockUpdated

# Notified (on commit) by every transaction that changes a clock, so the breach timer wakes for those alone and not
# for every append of the log (a send path at thousands of appends per second would keep it running passes).
CLOCKS_CHANNEL = "roomlog_sla_clocks"

# Each statement sets the instant the timer acts next (`next_at`) with its change: the at-risk instant until it is
# recorded, then the due instant; none once the clock is stopped or breached or has no due instant.
_SET = """
INSERT INTO sla_clocks AS c (tenant_id, stream_id, clock_id, metric, due_at, at_risk_at, at_risk_recorded, stopped,
                             position, next_at)
VALUES ($1, $2, $3, $4, $5, $6, false, false, $7, CASE WHEN $6::timestamptz < $5::timestamptz THEN $6 ELSE $5 END)
ON CONFLICT (stream_id, clock_id) DO UPDATE
SET metric = EXCLUDED.metric, due_at = EXCLUDED.due_at, at_risk_at = EXCLUDED.at_risk_at, stopped = false,
    position = EXCLUDED.position,
    next_at = CASE WHEN c.breached_at IS NOT NULL THEN NULL
                   WHEN NOT c.at_risk_recorded AND EXCLUDED.at_risk_at < EXCLUDED.due_at THEN EXCLUDED.at_risk_at
                   ELSE EXCLUDED.due_at END
WHERE c.position < EXCLUDED.position
"""
_STOPPED = """
UPDATE sla_clocks SET stopped = true, position = $3, next_at = NULL
WHERE stream_id = $1 AND clock_id = $2 AND position < $3
"""
_AT_RISK = """
UPDATE sla_clocks SET at_risk_recorded = true, position = $3,
    next_at = CASE WHEN stopped OR breached_at IS NOT NULL THEN NULL ELSE due_at END
WHERE stream_id = $1 AND clock_id = $2 AND position < $3
"""
_BREACHED = """
UPDATE sla_clocks SET breached_at = $4, recorded_at = $5, position = $3, next_at = NULL
WHERE stream_id = $1 AND clock_id = $2 AND position < $3
"""


class SlaClocksProjection:
    name = "sla_clocks"
    version = 1
    tables = ("sla_clocks",)
    handles = frozenset({"sla.clock_started", "sla.clock_updated", "sla.clock_stopped", "sla.at_risk",
                         "sla.breached"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE sla_clocks (
        tenant_id        text NOT NULL,
        stream_id        text NOT NULL,
        clock_id         text NOT NULL,
        metric           text NOT NULL,
        due_at           timestamptz,
        at_risk_at       timestamptz,
        at_risk_recorded boolean NOT NULL,
        stopped          boolean NOT NULL,
        breached_at      timestamptz,
        recorded_at      timestamptz,  -- when the breach was appended (its event's created_at)
        next_at          timestamptz,
        position         bigint NOT NULL,
        PRIMARY KEY (stream_id, clock_id)
    );
    CREATE INDEX sla_clocks_next ON sla_clocks (next_at) WHERE next_at IS NOT NULL;
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # A clock's row depends only on its own events, in log order; different clocks' events commute. So the
        # n-th event of every clock in the batch goes before any (n+1)-th, and consecutive ones of the same
        # statement are sent together (executemany): a timer's batch of breaches is one round trip, not one each.
        nth: dict[tuple[str, str], int] = {}
        steps: list[tuple[tuple[int, str, int], str, tuple[object, ...]]] = []
        for n, rec in enumerate(events):
            step = _step(rec)
            if step is None:
                continue
            clock, sql, args = step
            nth[clock] = nth.get(clock, -1) + 1
            steps.append(((nth[clock], sql, n), sql, args))
        steps.sort(key=lambda step: step[0])
        run: list[tuple[object, ...]] = []
        for i, (_, sql, args) in enumerate(steps):
            run.append(args)
            if i + 1 == len(steps) or steps[i + 1][1] != sql:
                await conn.executemany(sql, run)
                run = []
        if steps:
            await conn.execute("SELECT pg_notify($1, '')", CLOCKS_CHANNEL)


def _step(rec: RecordedEvent) -> tuple[tuple[str, str], str, tuple[object, ...]] | None:
    """What one event does to its clock's row: (the clock, statement, arguments)."""
    ev, stream = rec.event, rec.stream_id
    if isinstance(ev, SlaClockStarted | SlaClockUpdated):
        return (stream, ev.clock_id), _SET, (rec.tenant_id, stream, ev.clock_id, ev.metric, ev.due_at, ev.at_risk_at,
                                             rec.position)
    if isinstance(ev, SlaClockStopped):
        return (stream, ev.clock_id), _STOPPED, (stream, ev.clock_id, rec.position)
    if isinstance(ev, SlaAtRisk):
        return (stream, ev.clock_id), _AT_RISK, (stream, ev.clock_id, rec.position)
    if isinstance(ev, SlaBreached):
        return (stream, ev.clock_id), _BREACHED, (stream, ev.clock_id, rec.position, ev.breached_at, rec.created_at)
    return None


_CLOCK_COLUMNS = """
c.tenant_id, c.stream_id, c.clock_id, c.metric, c.due_at, c.at_risk_at, c.at_risk_recorded, c.stopped, c.breached_at,
c.recorded_at, s.last_seq
"""


async def lock_due_streams(conn: Connection, now: datetime, *, limit: int = 500) -> list[str]:
    """Lock (until the transaction ends) the streams of clocks due by `now`, earliest first, skipping the ones
    another transaction holds: another instance's timer, or an append to the stream."""
    # The append that follows needs ROW EXCLUSIVE on `streams`; taken first, this transaction locks `streams` before
    # `sla_clocks` as every append does, and as a replay's swap does (streams, then the tables it replaces), so it
    # cannot deadlock with one.
    await conn.execute("LOCK TABLE streams IN ROW EXCLUSIVE MODE")
    rows = await conn.fetch("SELECT s.stream_id FROM sla_clocks c JOIN streams s USING (stream_id)"
                            " WHERE c.next_at <= $1 ORDER BY c.next_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED",
                            now, limit)
    return list(dict.fromkeys(r["stream_id"] for r in rows))


async def due_clocks_of(conn: Connection, stream_ids: list[str], now: datetime) -> list[asyncpg.Record]:
    """The due clocks of the given streams with each stream's last_seq (read after locking the streams, so that
    nothing is appended to them in between)."""
    return await conn.fetch(f"SELECT {_CLOCK_COLUMNS} FROM sla_clocks c JOIN streams s USING (stream_id)"
                            " WHERE c.stream_id = ANY($1::text[]) AND c.next_at <= $2", stream_ids, now)


async def next_instant(conn: Queryable) -> datetime | None:
    """The earliest instant any clock needs the timer at (None: none does)."""
    value: datetime | None = await conn.fetchval("SELECT min(next_at) FROM sla_clocks WHERE next_at IS NOT NULL")
    return value


async def fetch_clock(conn: Queryable, stream_id: str, clock_id: str) -> asyncpg.Record | None:
    """One clock's row with its stream's last_seq, read in one snapshot."""
    return await conn.fetchrow(f"SELECT {_CLOCK_COLUMNS} FROM sla_clocks c JOIN streams s USING (stream_id)"
                               " WHERE c.stream_id = $1 AND c.clock_id = $2", stream_id, clock_id)
