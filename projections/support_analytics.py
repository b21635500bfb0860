"""Support analytics facts (catch-up): one row per session and per ticket with what reports are made of.

Each row holds a session's or ticket's channel, category, agent, creation, first agent response, resolution,
rating, reopen, transfer and public-agent-reply counts, and whether its SLA clocks were met or breached. The
report (`support_report`) aggregates these rows for a period; it never reads the log. The facts come from
several streams (the session's, its room's, the desk's, the ticket's), all applied here in log order, so
every change is guarded by the row's last applied position (`applied`): re-applying an event, as a resumed
replay does, changes nothing.

Beside the facts, `support_analytics_hourly` sums them per UTC hour of creation (overall and per channel,
category and agent) and `support_analytics_daily` sums those per UTC day, so a month's report adds up a few
thousand rollup rows instead of every fact of the month. Each batch adds to the rollup, in the same transaction,
the difference its changes made: the changed facts' shares now minus their shares before the batch. The rollup is
so the sum of the facts' shares, a function of the facts alone, which is what makes replay rebuild it identically
(`rollup_differences` compares it with the sum taken afresh).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

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
# A batch first takes the rows of the items its events name as they are (`_SNAPSHOT`), so that it can take their
# old shares out of the rollup and put the new ones in; a new row is returned as new (its old share is none), and a
# reply to a session, named by its room, returns the row as it was before (`o`: read in the statement, whose snapshot
# does not see its own change; joined instead of read by key, the planner scanned every fact).
_SNAPSHOT = "SELECT item_id, to_jsonb(f) AS old FROM support_analytics f WHERE item_id = ANY($1::text[])"
_CHANGED = " RETURNING item_id, NULL::jsonb AS old"

_NEW_SESSION = """
INSERT INTO support_analytics (tenant_id, item_id, kind, room_id, customer_id, channel, created_at, status, applied)
VALUES ($1, $2, 'session', $3, $4, $5, $6, 'open', $7)
ON CONFLICT (item_id) DO NOTHING
""" + _CHANGED
_NEW_TICKET = """
INSERT INTO support_analytics (tenant_id, item_id, kind, customer_id, channel, category, created_at, status, applied)
VALUES ($1, $2, 'ticket', $3, (SELECT channel FROM support_analytics WHERE item_id = $4), $5, $6, 'new', $7)
ON CONFLICT (item_id) DO NOTHING
""" + _CHANGED
# Every other change: `SET ...` of one row, parameters $1 item and $2 position first.
_GUARD = ", applied = $2 WHERE item_id = $1 AND applied < $2"
_UPDATE = "UPDATE support_analytics SET "
_ASSIGNED = _UPDATE + "agent_id = $3" + _GUARD
_MOVED = _UPDATE + "transfers = transfers + 1" + _GUARD
_ENDED = _UPDATE + "status = $3, resolved_at = $4, first_resolved_at = coalesce(first_resolved_at, $4)" + _GUARD
_RATED = _UPDATE + "rating = $3" + _GUARD
_REPLIED = _UPDATE + "agent_replies = agent_replies + 1, first_response_at = coalesce(first_response_at, $3)" + _GUARD
# A ticket's status: solved or closed resolves it (the first time in a row); any other status after a resolution
# is a reopen, which counts and clears the resolution until the next one.
_TICKET_STATUS = _UPDATE + """
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
_SLA_STOPPED = _UPDATE + "{0} = coalesce({0}, 'met')" + _GUARD
_SLA_BREACHED = _UPDATE + "{0} = 'breached'" + _GUARD
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
RETURNING a.item_id, (SELECT to_jsonb(o) FROM support_analytics o WHERE o.item_id = a.item_id) AS old
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
RETURNING a.item_id, (SELECT to_jsonb(o) FROM support_analytics o WHERE o.item_id = a.item_id) AS old
"""


# The rollup is the sum of every fact's share: each fact adds to the rows of its UTC hour (and day) of creation,
# overall and for its channel, category and agent, the figures below (`_SHARES`, following the report's definitions
# in `_REPORT`; a test holds the two reports to the same figures). A batch keeps it so by difference: for each fact
# row it changed, the new row's share minus the share of the row as it was before the batch, summed per rollup row
# and added in one statement per table; a rollup row left without facts (no sessions and no tickets) is deleted.
# Only the rows whose sums change are written, so a batch costs what it changes, not what its hours hold.
_DIMS = "(VALUES ('all', ''), ('channel', f.channel), ('category', f.category), ('agent', f.agent_id)) AS d(dim, value)"
_RESOLUTION = "((f.kind = 'session' AND f.status = 'resolved') OR (f.kind = 'ticket' AND f.resolved_at IS NOT NULL))"
_FIRST_CONTACT = ("CASE WHEN f.kind = 'session' THEN f.transfers = 0 ELSE f.agent_replies <= 1 END")
_SHARES = {
    "sessions": "(f.kind = 'session')::int",
    "tickets": "(f.kind = 'ticket')::int",
    "response_total": "coalesce(extract(epoch FROM f.first_response_at - f.created_at), 0)",
    "responses": "(f.first_response_at IS NOT NULL)::int",
    "resolution_total": "coalesce(extract(epoch FROM f.resolved_at - f.created_at), 0)",
    "resolved": "(f.resolved_at IS NOT NULL)::int",
    "rating_total": "coalesce(f.rating, 0)",
    "ratings": "(f.rating IS NOT NULL)::int",
    "satisfied": "coalesce(f.rating >= 4, false)::int",
    "fcr_base": f"{_RESOLUTION}::int",
    "fcr_unreopened": f"({_RESOLUTION} AND {_FIRST_CONTACT} AND f.reopened_at IS NULL)::int",
    "response_clocks": "(f.response_sla IS NOT NULL)::int",
    "response_met": "coalesce(f.response_sla = 'met', false)::int",
    "resolution_clocks": "(f.resolution_sla IS NOT NULL)::int",
    "resolution_met": "coalesce(f.resolution_sla = 'met', false)::int",
}
_COLUMN_NAMES = list(_SHARES)
_ROLLUP_COLUMNS = ", ".join(_COLUMN_NAMES)


def _summed(weight: str) -> str:
    """Each rollup column: the sum of `weight` times the shares of the facts `f`."""
    columns = (f"coalesce(sum({weight} * {share}), 0){'' if c.endswith('_total') else '::int'} AS {c}"
               for c, share in _SHARES.items())
    return ", ".join(columns)


# The facts a batch changed now ($1, counted +1) and as they were before it ($2, a JSON array of rows, counted -1).
_DELTAS = f"""
shares AS (
    SELECT 1 AS weight, f.* FROM support_analytics f WHERE f.item_id = ANY($1::text[])
    UNION ALL
    SELECT -1, o.* FROM jsonb_populate_recordset(NULL::support_analytics, $2::jsonb) AS o
), hours AS (
    SELECT * FROM (
        SELECT f.tenant_id, date_trunc('hour', f.created_at, 'UTC') AS hour, d.dim, d.value, {_summed("f.weight")}
        FROM shares f CROSS JOIN LATERAL {_DIMS}
        WHERE d.value IS NOT NULL
        GROUP BY 1, 2, 3, 4
    ) AS delta  -- a change that moves no sum (most of them: a message after the first reply) writes nothing
    WHERE ({_ROLLUP_COLUMNS}) IS DISTINCT FROM ({", ".join("0" for _ in _COLUMN_NAMES)})
)"""


def _add(table: str, span: str, rows: str) -> str:
    added = ", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in _COLUMN_NAMES)
    return f"""
    INSERT INTO {table} AS r {rows}
    ON CONFLICT (tenant_id, {span}, dim, value) DO UPDATE SET {added}
    RETURNING '{table}' AS rollup, r.tenant_id, r.{span} AS at, r.dim, r.value,
              r.sessions = 0 AND r.tickets = 0 AS empty"""


_DAYS = (f"SELECT tenant_id, date_trunc('day', hour, 'UTC'), dim, value,"
         f" {', '.join(f'sum({c})' + ('' if c.endswith('_total') else '::int') for c in _COLUMN_NAMES)}"
         " FROM hours GROUP BY 1, 2, 3, 4")
_ROLL_UP = f"""
WITH {_DELTAS.strip()}, added_hours AS ({_add("support_analytics_hourly", "hour", "SELECT * FROM hours")}
), added_days AS ({_add("support_analytics_daily", "day", _DAYS)}
)
SELECT rollup, tenant_id, at, dim, value FROM added_hours WHERE empty
UNION ALL
SELECT rollup, tenant_id, at, dim, value FROM added_days WHERE empty
"""
_DROP_EMPTY = """
DELETE FROM {0} r USING unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) AS k(tenant_id, at, dim, value)
WHERE r.tenant_id = k.tenant_id AND r.{1} = k.at AND r.dim = k.dim AND r.value = k.value
  AND r.sessions = 0 AND r.tickets = 0
"""

# The rollup summed afresh from a tenant's facts: what the rows kept by difference must equal (`rollup_differences`).
_FROM_FACTS = f"""
SELECT f.tenant_id, date_trunc('{{0}}', f.created_at, 'UTC') AS at, d.dim, d.value, {_summed("1")}
FROM support_analytics f CROSS JOIN LATERAL {_DIMS}
WHERE f.tenant_id = $1 AND d.value IS NOT NULL
GROUP BY 1, 2, 3, 4
"""


class SupportAnalyticsProjection:
    name = "support_analytics"
    version = 2
    tables = ("support_analytics", "support_analytics_hourly", "support_analytics_daily")
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
    -- Unique (item_id is anyway) so that replay keeps it while it rebuilds: each batch reads the facts of the
    -- hours it touched through it to rebuild their rollup rows.
    CREATE UNIQUE INDEX support_analytics_period ON support_analytics (tenant_id, created_at, item_id);
    CREATE INDEX support_analytics_room ON support_analytics (room_id) WHERE room_id IS NOT NULL;
    CREATE INDEX support_analytics_agent ON support_analytics (tenant_id, agent_id, resolved_at)
        WHERE kind = 'session';
    CREATE INDEX support_analytics_reopened ON support_analytics (tenant_id, created_at)
        WHERE reopened_at IS NOT NULL;
    -- The facts summed per UTC hour of creation: once over all of them (dim 'all', value ''), and per channel,
    -- category and agent (rows without one are in no row of that dim). Every figure but the first-contact
    -- resolution of reopened tickets (which depends on a setting) is a sum or count of these.
    CREATE TABLE support_analytics_hourly (
        tenant_id         text NOT NULL,
        hour              timestamptz NOT NULL,
        dim               text NOT NULL,     -- all | channel | category | agent
        value             text NOT NULL,
        sessions          int NOT NULL,
        tickets           int NOT NULL,
        response_total    numeric NOT NULL,  -- seconds from creation to the first reply, summed
        responses         int NOT NULL,
        resolution_total  numeric NOT NULL,  -- seconds from creation to the resolution, summed
        resolved          int NOT NULL,
        rating_total      int NOT NULL,
        ratings           int NOT NULL,
        satisfied         int NOT NULL,      -- ratings of 4 or 5
        fcr_base          int NOT NULL,      -- resolutions (see the report's definition)
        fcr_unreopened    int NOT NULL,      -- first-contact resolutions without a reopen
        response_clocks   int NOT NULL,
        response_met      int NOT NULL,
        resolution_clocks int NOT NULL,
        resolution_met    int NOT NULL,
        PRIMARY KEY (tenant_id, hour, dim, value)
    );
    CREATE INDEX support_analytics_hourly_all ON support_analytics_hourly (tenant_id, hour) WHERE dim = 'all';
    -- The same sums per UTC day, for the whole days inside a period (its first and last hours come from above).
    CREATE TABLE support_analytics_daily (LIKE support_analytics_hourly);
    ALTER TABLE support_analytics_daily RENAME COLUMN hour TO day;
    ALTER TABLE support_analytics_daily ADD PRIMARY KEY (tenant_id, day, dim, value);
    """

    @property
    def decodes(self) -> frozenset[str]:
        """What `apply_batch` takes decoded from a batch: all but the messages, unless those need upcasting."""
        return self.handles if needs_upcasting("message.sent") else self.handles - {"message.sent"}

    async def apply_batch(self, conn: Connection, batch: LogBatch) -> None:
        """Replay: the batch's messages straight from `events` by position range, never decoded in Python (they are
        most of the log, and only the few in support rooms count), the other events decoded and applied in between."""
        if needs_upcasting("message.sent"):  # the SQL reads the stored payloads as they are
            if mine := batch.events(self.handles):
                await self.apply(conn, mine)
            return
        others = batch.events(self.handles - {"message.sent"})
        touched = await _snapshot(conn, others)
        after = batch.after
        for rec in others:
            if rec.position - 1 > after:
                await _change(conn, touched, _RANGE_REPLIES, after, rec.position - 1)
            await _apply_one(conn, touched, rec)
            after = rec.position
        if batch.until > after and "message.sent" in batch.types:
            await _change(conn, touched, _RANGE_REPLIES, after, batch.until)
        if touched:
            await _roll_up(conn, touched)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        touched = await _snapshot(conn, [rec for rec in events if not isinstance(rec.event, MessageSent)])
        # Messages are most of the log: consecutive ones go to the database as one statement.
        sent: list[RecordedEvent] = []
        for rec in events:
            if isinstance(rec.event, MessageSent):
                if rec.event.message_type != "system":
                    sent.append(rec)
                continue
            if sent:
                await _replies(conn, touched, sent)
                sent = []
            await _apply_one(conn, touched, rec)
        if sent:
            await _replies(conn, touched, sent)
        if touched:
            await _roll_up(conn, touched)


# The fact rows a batch may have changed: each item's row as it was before the batch (JSON; None for a row the batch
# created). An item in it that the batch left alone adds nothing: its new share cancels its old one.
Touched = dict[str, str | None]


async def _snapshot(conn: Connection, events: Sequence[RecordedEvent]) -> Touched:
    items = list(dict.fromkeys(_item_of(rec) for rec in events))
    return {row["item_id"]: row["old"] for row in await conn.fetch(_SNAPSHOT, items)} if items else {}


def _item_of(rec: RecordedEvent) -> str:
    """The fact row an event other than a message changes (see `_apply_one`)."""
    ev = rec.event
    if isinstance(ev, SupportSessionCreated | SupportSessionAssigned):
        return ev.session_id
    if isinstance(ev, SupportTicketCreated):
        return ev.ticket_id
    return rec.stream_id


async def _change(conn: Connection, touched: Touched, statement: str, *args: object) -> None:
    for row in await conn.fetch(statement, *args):
        touched.setdefault(row["item_id"], row["old"])


async def _roll_up(conn: Connection, touched: Touched) -> None:
    # Whatever the batches, the rollup stays the sum of the facts' shares: what replay rebuilds.
    items = list(touched)
    olds = "[" + ",".join(old for item in items if (old := touched[item]) is not None) + "]"
    empty = await conn.fetch(_ROLL_UP, items, olds)
    for table, span in (("support_analytics_hourly", "hour"), ("support_analytics_daily", "day")):
        if keys := [r for r in empty if r["rollup"] == table]:
            await conn.execute(_DROP_EMPTY.format(table, span), [r["tenant_id"] for r in keys], [r["at"] for r in keys],
                               [r["dim"] for r in keys], [r["value"] for r in keys])


async def rollup_differences(conn: Queryable, tenant_id: str) -> dict[str, int]:
    """How many of the tenant's rows of each rollup table differ from the rollup summed afresh from its facts."""
    differences = {}
    for table, span, unit in (("support_analytics_hourly", "hour", "hour"), ("support_analytics_daily", "day", "day")):
        kept = f"SELECT tenant_id, {span}, dim, value, {_ROLLUP_COLUMNS} FROM {table} WHERE tenant_id = $1"
        fresh = _FROM_FACTS.format(unit)
        differences[table] = await conn.fetchval(
            f"SELECT count(*) FROM (({kept} EXCEPT ALL {fresh}) UNION ALL ({fresh} EXCEPT ALL {kept})) AS d", tenant_id)
    return differences


async def _replies(conn: Connection, touched: Touched, sent: list[RecordedEvent]) -> None:
    messages = [rec.event for rec in sent if isinstance(rec.event, MessageSent)]
    await _change(conn, touched, _ROOM_REPLIES, [rec.stream_id for rec in sent], [m.sender_id for m in messages],
                  [rec.position for rec in sent], [rec.created_at for rec in sent])


async def _apply_one(conn: Connection, touched: Touched, rec: RecordedEvent) -> None:
    ev, at, pos = rec.event, rec.created_at, rec.position
    if isinstance(ev, SupportSessionCreated):
        await _change(conn, touched, _NEW_SESSION, rec.tenant_id, ev.session_id, ev.room_id, ev.customer_id,
                      ev.channel, at, pos)
    elif isinstance(ev, SupportSessionAssigned):
        await _change(conn, touched, _ASSIGNED, ev.session_id, pos, ev.agent_id)
    elif isinstance(ev, SupportSessionTransferred | SupportSessionEscalated):
        await _change(conn, touched, _MOVED, rec.stream_id, pos)
    elif isinstance(ev, SupportSessionEnded):
        await _change(conn, touched, _ENDED, rec.stream_id, pos, ev.status, at)
    elif isinstance(ev, SupportSessionRated):
        await _change(conn, touched, _RATED, rec.stream_id, pos, ev.score)
    elif isinstance(ev, SupportTicketCreated):
        await _change(conn, touched, _NEW_TICKET, rec.tenant_id, ev.ticket_id, ev.customer_id, ev.session_id or "",
                      ev.category, at, pos)
    elif isinstance(ev, SupportTicketUpdated):
        await _ticket_updated(conn, touched, rec, ev)
    elif isinstance(ev, SupportTicketCommented):
        if ev.public and ev.author_type == "agent":
            await _change(conn, touched, _REPLIED, rec.stream_id, pos, at)
    elif isinstance(ev, SlaClockStopped | SlaBreached) and ev.metric in _SLA_COLUMN:
        statement = _SLA_BREACHED if isinstance(ev, SlaBreached) else _SLA_STOPPED
        await _change(conn, touched, statement.format(_SLA_COLUMN[ev.metric]), rec.stream_id, pos)


async def _ticket_updated(conn: Connection, touched: Touched, rec: RecordedEvent, ev: SupportTicketUpdated) -> None:
    fields = [(column, getattr(ev, name)) for name, column in _TICKET_FIELD.items() if name in ev.changed]
    if fields:
        sets = ", ".join(f"{column} = ${n}" for n, (column, _) in enumerate(fields, start=3))
        # Not guarded by position: the status change of the same event may follow.
        await _change(conn, touched, _UPDATE + f"{sets} WHERE item_id = $1 AND applied < $2",
                      rec.stream_id, rec.position, *(value for _, value in fields))
    if "status" in ev.changed and ev.status is not None:
        await _change(conn, touched, _TICKET_STATUS, rec.stream_id, rec.position, ev.status, rec.created_at,
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

# The same figures from the rollup, for periods whose bounds and buckets fall on whole UTC hours: the series from
# the hours' overall rows, the rest from the whole UTC days inside the period [$7, $8) and the hours around them.
# A ticket resolved at first contact and later reopened counts only if the reopen came more than `$5` days after
# its first resolution: that depends on a setting, so those few tickets (the partial index) come from their facts.
_SUMS = """
coalesce(sum(sessions), 0)::int AS sessions, coalesce(sum(tickets), 0)::int AS tickets,
(sum(response_total) / nullif(sum(responses), 0))::float AS response_seconds,
(sum(resolution_total) / nullif(sum(resolved), 0) / 60)::float AS resolution_minutes,
coalesce(sum(resolved), 0)::int AS resolved,
(sum(rating_total)::numeric / nullif(sum(ratings), 0))::float AS rating,
coalesce(sum(ratings), 0)::int AS ratings, coalesce(sum(satisfied), 0)::int AS satisfied,
coalesce(sum(fcr_base), 0)::int AS fcr_base, coalesce(sum(fcr_unreopened), 0)::int AS fcr,
coalesce(sum(response_clocks), 0)::int AS response_clocks, coalesce(sum(response_met), 0)::int AS response_met,
coalesce(sum(resolution_clocks), 0)::int AS resolution_clocks,
coalesce(sum(resolution_met), 0)::int AS resolution_met
"""
_HOURLY_REPORT = f"""
WITH late_reopened AS (
    SELECT f.created_at, d.dim, d.value
    FROM support_analytics f CROSS JOIN LATERAL {_DIMS}
    WHERE f.tenant_id = $1 AND f.created_at >= $2 AND f.created_at < $3 AND f.reopened_at IS NOT NULL
      AND {_RESOLUTION} AND {_FIRST_CONTACT} AND f.reopened_at > f.first_resolved_at + make_interval(days => $5)
      AND d.value IS NOT NULL
), totals AS (
    SELECT dim, value, {_ROLLUP_COLUMNS} FROM support_analytics_hourly
    WHERE tenant_id = $1 AND (hour >= $2 AND hour < $7 OR hour >= $8 AND hour < $3)
    UNION ALL
    SELECT dim, value, {_ROLLUP_COLUMNS} FROM support_analytics_daily WHERE tenant_id = $1 AND day >= $7 AND day < $8
    UNION ALL
    SELECT dim, value, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0 FROM late_reopened
), series AS (
    SELECT hour, {_ROLLUP_COLUMNS} FROM support_analytics_hourly
    WHERE tenant_id = $1 AND dim = 'all' AND hour >= $2 AND hour < $3
    UNION ALL
    SELECT created_at, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0 FROM late_reopened WHERE dim = 'all'
)
SELECT 15 AS grp, NULL::text AS channel, NULL::text AS category, NULL::text AS agent_id, NULL::timestamptz AS bucket,
       {_SUMS}
FROM totals WHERE dim = 'all'
UNION ALL
SELECT 14, NULL, NULL, NULL, bucket AT TIME ZONE $4, {_SUMS}
FROM (SELECT *, date_trunc($6, hour AT TIME ZONE $4) AS bucket FROM series) AS s GROUP BY bucket
UNION ALL
SELECT CASE dim WHEN 'channel' THEN 7 WHEN 'category' THEN 11 ELSE 13 END,
       CASE WHEN dim = 'channel' THEN value END, CASE WHEN dim = 'category' THEN value END,
       CASE WHEN dim = 'agent' THEN value END, NULL, {_SUMS}
FROM totals WHERE dim <> 'all' GROUP BY dim, value
"""

# GROUPING(channel, category, agent_id, bucket): a bit per column, set when the row is not grouped by it.
GROUPED_BY = {0b1111: "summary", 0b0111: "channel", 0b1011: "category", 0b1101: "agent", 0b1110: "bucket"}
# Enough for the groupings to be hashed in memory rather than sorted on disk (a month is ~100,000 rows).
_WORK_MEM = "64MB"


async def support_report(
    conn: Connection, tenant_id: str, *, start: datetime, end: datetime, timezone: str, group_by: str,
    reopen_days: int, hourly: bool = False,
) -> list[asyncpg.Record]:
    """The figures of the tenant's sessions and tickets created in [start, end): overall, by channel, by category,
    by agent and by `group_by` bucket of local time in `timezone` (`grp` says which: see GROUPED_BY).

    With `hourly` they are summed from the hourly rollup, which is exact only when `start`, `end` and every
    bucket's bounds are whole UTC hours; else they are aggregated from the facts.
    """
    args: list[object] = [tenant_id, start, end, timezone, reopen_days, group_by]
    if hourly:
        first_day = _utc_midnight(start + timedelta(days=1) - timedelta(microseconds=1))
        last_day = _utc_midnight(end)
        args += [first_day, last_day] if first_day < last_day else [end, end]
        # A few thousand rollup rows need no more memory than the default: one statement, one round trip.
        return list(await conn.fetch(_HOURLY_REPORT, *args))
    async with conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
        return list(await conn.fetch(_REPORT, *args))


def _utc_midnight(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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
