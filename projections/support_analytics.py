"""Support analytics facts (catch-up): one row per session and per ticket with what reports are made of.

Each row holds a session's or ticket's channel, category, agent, creation, first agent response, resolution,
rating, reopen, transfer and public-agent-reply counts, and whether its SLA clocks were met or breached. The
report (`support_report`) aggregates these rows for a period; it never reads the log. The facts come from
several streams (the session's, its room's, the desk's, the ticket's), all applied here in log order, so
every change is guarded by the row's last applied position (`applied`): re-applying an event, as a resumed
replay does, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from eventstore.types import Connection, Queryable
from projections.base import LogBatch
from schemas.events import (
    MessageSent,
    RecordedEvent,
    SlaBreached,
    SlaClockStopped,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionRated,
    SupportSessionTransferred,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketUpdated,
)
from schemas.upcasting import needs_upcasting

_RESOLVED_TICKET = ("solved", "closed")

_NEW_SESSION = """
INSERT INTO support_analytics (tenant_id, item_id, kind, room_id, customer_id, channel, created_at, status, applied)
VALUES ($1, $2, 'session', $3, $4, $5, $6, 'open', $7)
ON CONFLICT (item_id) DO NOTHING
"""
_NEW_TICKET = """
INSERT INTO support_analytics (tenant_id, item_id, kind, customer_id, channel, category, created_at, status, applied)
VALUES ($1, $2, 'ticket', $3, (SELECT channel FROM support_analytics WHERE item_id = $4), $5, $6, 'new', $7)
ON CONFLICT (item_id) DO NOTHING
"""
# Every other change: `SET ...` of one row, parameters $1 item and $2 position first.
_GUARD = ", applied = $2 WHERE item_id = $1 AND applied < $2"
_ASSIGNED = "UPDATE support_analytics SET agent_id = $3" + _GUARD
_MOVED = "UPDATE support_analytics SET transfers = transfers + 1" + _GUARD
_ENDED = ("UPDATE support_analytics SET status = $3, resolved_at = $4, first_resolved_at = coalesce(first_resolved_at,"
          " $4)" + _GUARD)
_RATED = "UPDATE support_analytics SET rating = $3" + _GUARD
_REPLIED = ("UPDATE support_analytics SET agent_replies = agent_replies + 1, first_response_at ="
            " coalesce(first_response_at, $3)" + _GUARD)
# A ticket's status: solved or closed resolves it (the first time in a row); any other status after a resolution
# is a reopen, which counts and clears the resolution until the next one.
_TICKET_STATUS = """
UPDATE support_analytics SET
    status = $3,
    resolved_at = CASE WHEN $3 = ANY($5::text[]) THEN coalesce(resolved_at, $4) END,
    first_resolved_at = CASE WHEN $3 = ANY($5::text[]) THEN coalesce(first_resolved_at, $4) ELSE first_resolved_at END,
    reopens = reopens + (resolved_at IS NOT NULL AND NOT $3 = ANY($5::text[]))::int,
    reopened_at = CASE WHEN resolved_at IS NOT NULL AND NOT $3 = ANY($5::text[]) THEN coalesce(reopened_at, $4)
                       ELSE reopened_at END
""" + _GUARD
_TICKET_FIELD = {"assigned_to": "agent_id", "category": "category"}
# An SLA metric's outcome: a breach stays a breach; a clock stopped without one was met.
_SLA_COLUMN = {"first_response": "response_sla", "next_response": "response_sla", "resolution": "resolution_sla"}
_SLA_STOPPED = "UPDATE support_analytics SET {0} = coalesce({0}, 'met')" + _GUARD
_SLA_BREACHED = "UPDATE support_analytics SET {0} = 'breached'" + _GUARD
# The messages of a batch in support rooms by anyone but the session's customer: its agents' public replies.
_ROOM_REPLIES = """
WITH sent AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[]) AS m(room_id, sender, position, at)
), replies AS (
    SELECT a.item_id, count(*)::int AS n, min(sent.at) AS first_at, max(sent.position) AS position
    FROM support_analytics a JOIN sent ON sent.room_id = a.room_id
    WHERE sent.sender <> a.customer_id AND sent.position > a.applied
    GROUP BY a.item_id
)
UPDATE support_analytics a SET agent_replies = a.agent_replies + replies.n,
    first_response_at = coalesce(a.first_response_at, replies.first_at), applied = replies.position
FROM replies WHERE a.item_id = replies.item_id
"""

# The same over the messages of a position range of the log (replay), read from their stored payloads.
_RANGE_REPLIES = """
WITH replies AS (
    SELECT a.item_id, count(*)::int AS n, min(e.created_at) AS first_at, max(e.position) AS position
    FROM events e JOIN support_analytics a ON a.room_id = e.stream_id
    WHERE e.position > $1 AND e.position <= $2 AND e.type = 'message.sent'
      AND coalesce(e.data->>'message_type', 'text') <> 'system'
      AND e.data->>'sender_id' <> a.customer_id AND e.position > a.applied
    GROUP BY a.item_id
)
UPDATE support_analytics a SET agent_replies = a.agent_replies + replies.n,
    first_response_at = coalesce(a.first_response_at, replies.first_at), applied = replies.position
FROM replies WHERE a.item_id = replies.item_id
"""


class SupportAnalyticsProjection:
    name = "support_analytics"
    version = 1
    tables = ("support_analytics",)
    handles = frozenset({
        "support.session.created", "support.session.assigned", "support.session.transferred",
        "support.session.escalated", "support.session.ended", "support.session.rated", "message.sent",
        "support.ticket.created", "support.ticket.updated", "support.ticket.commented",
        "sla.clock_stopped", "sla.breached",
    })
    sql = None  # a catch-up projection: never inside the append
    ddl = """
    CREATE TABLE support_analytics (
        tenant_id         text NOT NULL,
        item_id           text PRIMARY KEY,  -- the session's or ticket's id
        kind              text NOT NULL,     -- session | ticket
        room_id           text,              -- a session's room, where its agents reply
        customer_id       text NOT NULL,
        channel           text,              -- a session's; a ticket made from a session has that session's
        category          text,              -- a ticket's
        agent_id          text,              -- the latest assigned
        status            text NOT NULL,     -- sessions open, resolved, closed; tickets their status
        created_at        timestamptz NOT NULL,
        first_response_at timestamptz,
        resolved_at       timestamptz,       -- ended (sessions), solved or closed (tickets); null after a reopen
        first_resolved_at timestamptz,
        reopened_at       timestamptz,       -- the first reopen after a resolution
        reopens           int NOT NULL DEFAULT 0,
        transfers         int NOT NULL DEFAULT 0,
        agent_replies     int NOT NULL DEFAULT 0,
        rating            int,
        response_sla      text,              -- met | breached, once a response clock ended
        resolution_sla    text,
        applied           bigint NOT NULL    -- the log position of the last event applied
    );
    CREATE INDEX support_analytics_period ON support_analytics (tenant_id, created_at);
    CREATE INDEX support_analytics_room ON support_analytics (room_id) WHERE room_id IS NOT NULL;
    CREATE INDEX support_analytics_agent ON support_analytics (tenant_id, agent_id, resolved_at)
        WHERE kind = 'session';
    """

    async def apply_batch(self, conn: Connection, batch: LogBatch) -> None:
        """Replay: the batch's messages straight from `events` by position range, never decoded in Python (they are
        most of the log, and only the few in support rooms count), the other events decoded and applied in between."""
        if needs_upcasting("message.sent"):  # the SQL reads the stored payloads as they are
            if mine := batch.events(self.handles):
                await self.apply(conn, mine)
            return
        after = batch.after
        for rec in batch.events(self.handles - {"message.sent"}):
            if rec.position - 1 > after:
                await conn.execute(_RANGE_REPLIES, after, rec.position - 1)
            await _apply_one(conn, rec)
            after = rec.position
        if batch.until > after and "message.sent" in batch.types:
            await conn.execute(_RANGE_REPLIES, after, batch.until)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # Messages are most of the log: consecutive ones go to the database as one statement.
        sent: list[RecordedEvent] = []
        for rec in events:
            if isinstance(rec.event, MessageSent):
                if rec.event.message_type != "system":
                    sent.append(rec)
                continue
            if sent:
                await _replies(conn, sent)
                sent = []
            await _apply_one(conn, rec)
        if sent:
            await _replies(conn, sent)


async def _replies(conn: Connection, sent: list[RecordedEvent]) -> None:
    messages = [rec.event for rec in sent if isinstance(rec.event, MessageSent)]
    await conn.execute(_ROOM_REPLIES, [rec.stream_id for rec in sent], [m.sender_id for m in messages],
                       [rec.position for rec in sent], [rec.created_at for rec in sent])


async def _apply_one(conn: Connection, rec: RecordedEvent) -> None:
    ev, at, pos = rec.event, rec.created_at, rec.position
    if isinstance(ev, SupportSessionCreated):
        await conn.execute(_NEW_SESSION, rec.tenant_id, ev.session_id, ev.room_id, ev.customer_id, ev.channel, at, pos)
    elif isinstance(ev, SupportSessionAssigned):
        await conn.execute(_ASSIGNED, ev.session_id, pos, ev.agent_id)
    elif isinstance(ev, SupportSessionTransferred | SupportSessionEscalated):
        await conn.execute(_MOVED, rec.stream_id, pos)
    elif isinstance(ev, SupportSessionEnded):
        await conn.execute(_ENDED, rec.stream_id, pos, ev.status, at)
    elif isinstance(ev, SupportSessionRated):
        await conn.execute(_RATED, rec.stream_id, pos, ev.score)
    elif isinstance(ev, SupportTicketCreated):
        await conn.execute(_NEW_TICKET, rec.tenant_id, ev.ticket_id, ev.customer_id, ev.session_id or "", ev.category,
                           at, pos)
    elif isinstance(ev, SupportTicketUpdated):
        await _ticket_updated(conn, rec, ev)
    elif isinstance(ev, SupportTicketCommented):
        if ev.public and ev.author_type == "agent":
            await conn.execute(_REPLIED, rec.stream_id, pos, at)
    elif isinstance(ev, SlaClockStopped | SlaBreached) and ev.metric in _SLA_COLUMN:
        statement = _SLA_BREACHED if isinstance(ev, SlaBreached) else _SLA_STOPPED
        await conn.execute(statement.format(_SLA_COLUMN[ev.metric]), rec.stream_id, pos)


async def _ticket_updated(conn: Connection, rec: RecordedEvent, ev: SupportTicketUpdated) -> None:
    fields = [(column, getattr(ev, name)) for name, column in _TICKET_FIELD.items() if name in ev.changed]
    if fields:
        sets = ", ".join(f"{column} = ${n}" for n, (column, _) in enumerate(fields, start=3))
        # Not guarded by position: the status change of the same event may follow.
        await conn.execute(f"UPDATE support_analytics SET {sets} WHERE item_id = $1 AND applied < $2",
                           rec.stream_id, rec.position, *(value for _, value in fields))
    if "status" in ev.changed and ev.status is not None:
        await conn.execute(_TICKET_STATUS, rec.stream_id, rec.position, ev.status, rec.created_at,
                           list(_RESOLVED_TICKET))
    elif fields:
        await conn.execute("UPDATE support_analytics SET applied = $2 WHERE item_id = $1 AND applied < $2",
                           rec.stream_id, rec.position)


# --- the report ------------------------------------------------------------------------------------------------

# Each row of the period narrowed to the numbers the figures are made of, then grouped five ways in one pass
# (`grp` tells the groupings apart). `$5` is how many days after its first resolution a reopen still undoes a
# first-contact resolution. Response times count from creation to the first public agent reply; resolution
# times from creation to the (latest) resolution.
_REPORT = """
SELECT GROUPING(channel, category, agent_id, bucket) AS grp, channel, category, agent_id,
       bucket AT TIME ZONE $4 AS bucket,
       count(*) FILTER (WHERE is_session)::int AS sessions,
       count(*) FILTER (WHERE NOT is_session)::int AS tickets,
       avg(response)::float AS response_seconds,
       (avg(resolution) / 60)::float AS resolution_minutes,
       count(resolution)::int AS resolved,
       avg(rating)::float AS rating,
       count(rating)::int AS ratings,
       count(*) FILTER (WHERE rating >= 4)::int AS satisfied,
       count(fcr)::int AS fcr_base,
       count(*) FILTER (WHERE fcr)::int AS fcr,
       count(response_met)::int AS response_clocks,
       count(*) FILTER (WHERE response_met)::int AS response_met,
       count(resolution_met)::int AS resolution_clocks,
       count(*) FILTER (WHERE resolution_met)::int AS resolution_met
FROM (
    SELECT channel, category, agent_id, date_trunc($6, created_at AT TIME ZONE $4) AS bucket,
           kind = 'session' AS is_session,
           extract(epoch FROM first_response_at - created_at) AS response,
           extract(epoch FROM resolved_at - created_at) AS resolution,
           rating,
           -- null: not a resolution (open, or a session closed unresolved); else whether at first contact
           CASE WHEN kind = 'session' AND status = 'resolved' THEN transfers = 0
                WHEN kind = 'ticket' AND resolved_at IS NOT NULL THEN agent_replies <= 1
                     AND (reopened_at IS NULL OR reopened_at > first_resolved_at + make_interval(days => $5))
           END AS fcr,
           response_sla = 'met' AS response_met,
           resolution_sla = 'met' AS resolution_met
    FROM support_analytics WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
) period
GROUP BY GROUPING SETS ((), (channel), (category), (agent_id), (bucket))
"""
# GROUPING(channel, category, agent_id, bucket): a bit per column, set when the row is not grouped by it.
GROUPED_BY = {0b1111: "summary", 0b0111: "channel", 0b1011: "category", 0b1101: "agent", 0b1110: "bucket"}
# Enough for the groupings to be hashed in memory rather than sorted on disk (a month is ~100,000 rows).
_WORK_MEM = "64MB"


async def support_report(
    conn: Connection, tenant_id: str, *, start: datetime, end: datetime, timezone: str, group_by: str,
    reopen_days: int,
) -> list[asyncpg.Record]:
    """The figures of the tenant's sessions and tickets created in [start, end): overall, by channel, by category,
    by agent and by `group_by` bucket of local time in `timezone` (`grp` says which: see GROUPED_BY)."""
    async with conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
        return list(await conn.fetch(_REPORT, tenant_id, start, end, timezone, reopen_days, group_by))


async def agent_day(conn: Queryable, tenant_id: str, agent_id: str, since: datetime) -> asyncpg.Record:
    """An agent's sessions ended since `since`: count, resolved count, mean rating, mean seconds to first reply."""
    row = await conn.fetchrow(
        "SELECT count(*)::int AS handled, count(*) FILTER (WHERE status = 'resolved')::int AS resolved,"
        " avg(rating)::float AS rating, avg(extract(epoch FROM first_response_at - created_at))::float AS response"
        " FROM support_analytics WHERE tenant_id = $1 AND agent_id = $2 AND kind = 'session' AND resolved_at >= $3",
        tenant_id, agent_id, since,
    )
    assert row is not None
    return row
