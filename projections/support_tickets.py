"""Support tickets read model: each ticket's current fields, and its timeline (one entry per ticket event).

Every event of a ticket comes from the ticket's own stream, in seq order: the row is guarded by `ticket_seq`
and each timeline entry is keyed by (ticket, seq), so applying an event twice changes nothing. Internal
entries (notes, private comments) are marked `internal`; every read for a customer leaves them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from schemas.events import (
    RecordedEvent,
    SlaAtRisk,
    SlaBreached,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketEscalated,
    SupportTicketNoteAdded,
    SupportTicketSlaApplied,
    SupportTicketSlaEvaluated,
    SupportTicketUpdated,
    event_fields,
)

_encoder = msgspec.json.Encoder()

_CREATE = """
INSERT INTO support_tickets (tenant_id, ticket_id, number, display_number, subject, description, customer_id,
    priority, category, tags, status, related_order_id, session_id, room_id, attachments, follow_up_of, created_by,
    created_at, updated_at, ticket_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'new', $11, $12, $13, $14::jsonb, $15, $16, $17, $17, $18)
ON CONFLICT (ticket_id) DO NOTHING
RETURNING tenant_id, status, priority, '' AS assigned_to, coalesce(category, '') AS category, tags
"""
# How many tickets of each (status, priority, assignee, category) a tenant has, and of each (tag, status,
# priority): listings filtered on those alone answer `total` from here instead of counting the matching rows.
# A change moves the ticket from its old keys to its new ones; `old` sees the row as it was before the
# statement (one snapshot), and the keys left and the keys entered never overlap (a row changes once).
_COUNT_NEW = """
INSERT INTO support_ticket_counts AS c (tenant_id, status, priority, assigned_to, category, n)
SELECT tenant_id, status, priority, assigned_to, category, 1 FROM moved
ON CONFLICT (tenant_id, status, priority, assigned_to, category) DO UPDATE SET n = c.n + 1
"""
_KEYS = ("tenant_id, status, priority, coalesce(assigned_to, '') AS assigned_to, coalesce(category, '') AS category,"
         " tags")


def _counted_update(update: str) -> str:
    """`update` (an UPDATE of one ticket guarded by $1 ticket and $2 seq), moving the ticket's counts too."""
    return f"""
WITH old AS (
    SELECT {_KEYS} FROM support_tickets WHERE ticket_id = $1 AND ticket_seq < $2
), new AS (
    {update}
    RETURNING {_KEYS}
), moved AS (
    SELECT new.* FROM old, new
    WHERE (old.status, old.priority, old.assigned_to, old.category)
        IS DISTINCT FROM (new.status, new.priority, new.assigned_to, new.category)
), gone AS (
    UPDATE support_ticket_counts c SET n = c.n - 1 FROM old, moved
    WHERE c.tenant_id = old.tenant_id AND c.status = old.status AND c.priority = old.priority
      AND c.assigned_to = old.assigned_to AND c.category = old.category
), old_tags AS (
    SELECT old.tenant_id, t AS tag, old.status, old.priority FROM old, unnest(old.tags) AS t
), new_tags AS (
    SELECT new.tenant_id, t AS tag, new.status, new.priority FROM new, unnest(new.tags) AS t
), tags_gone AS (
    UPDATE support_ticket_tag_counts c SET n = c.n - 1
    FROM (SELECT * FROM old_tags EXCEPT SELECT * FROM new_tags) g
    WHERE c.tenant_id = g.tenant_id AND c.tag = g.tag AND c.status = g.status AND c.priority = g.priority
), tags_new AS (
    INSERT INTO support_ticket_tag_counts AS c (tenant_id, tag, status, priority, n)
    SELECT tenant_id, tag, status, priority, 1 FROM (SELECT * FROM new_tags EXCEPT SELECT * FROM old_tags) e
    ON CONFLICT (tenant_id, tag, status, priority) DO UPDATE SET n = c.n + 1
)
{_COUNT_NEW}"""


def _counted_create() -> str:
    return f"""
WITH moved AS ({_CREATE}), tagged AS (
    INSERT INTO support_ticket_tag_counts AS c (tenant_id, tag, status, priority, n)
    SELECT DISTINCT moved.tenant_id, t, moved.status, moved.priority, 1 FROM moved, unnest(moved.tags) AS t
    ON CONFLICT (tenant_id, tag, status, priority) DO UPDATE SET n = c.n + 1
){_COUNT_NEW}"""


_ENTRY = """
INSERT INTO support_ticket_entries (tenant_id, ticket_id, seq, kind, actor, internal, created_at, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
ON CONFLICT (ticket_id, seq) DO NOTHING
"""
_GUARD = " WHERE ticket_id = $1 AND ticket_seq < $2"
# The columns an update may change, and the statement fragment setting each (parameters $4 …).
_UPDATABLE = ("status", "priority", "assigned_to", "tags", "category")
# The SLA events a ticket's stream holds besides its own (the clocks the breach timer follows, and its records).
SLA_EVENT_TYPES = ("support.ticket.sla_applied", "support.ticket.sla_evaluated", "sla.clock_started",
                   "sla.clock_updated", "sla.clock_stopped", "sla.at_risk", "sla.breached")
# Quick actions run on a ticket are recorded in its stream too: its seq moves, the timeline shows their effects.
QUICK_ACTION_EVENT_TYPES = ("support.quick_action.executed", "support.quick_action.completed")


class SupportTicketsProjection:
    name = "support_tickets"
    version = 3
    tables = ("support_tickets", "support_ticket_entries", "support_ticket_counts", "support_ticket_tag_counts")
    handles = frozenset({"support.ticket.created", "support.ticket.updated", "support.ticket.commented",
                         "support.ticket.note_added", "support.ticket.escalated", *SLA_EVENT_TYPES,
                         *QUICK_ACTION_EVENT_TYPES})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE support_tickets (
        tenant_id         text NOT NULL,
        ticket_id         text PRIMARY KEY,
        number            bigint NOT NULL,
        display_number    text NOT NULL,
        subject           text NOT NULL,
        description       text NOT NULL,
        customer_id       text NOT NULL,
        priority          text NOT NULL,
        category          text,
        tags              text[] NOT NULL,
        status            text NOT NULL,
        assigned_to       text,
        related_order_id  text,
        session_id        text,
        room_id           text,
        attachments       jsonb NOT NULL,
        follow_up_of      text,
        created_by        text NOT NULL,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL,
        first_response_at timestamptz,
        solved_at         timestamptz,
        closed_at         timestamptz,
        sla_status        text,  -- the SLA fold's status (within_sla, at_risk, breached, paused); null without one
        sla_policy_id     text,  -- the applied policy version and calendar version; null without a policy
        sla_policy_version integer,
        sla_calendar_id   text,
        sla_calendar_version integer,
        sla_response_due  timestamptz,
        sla_resolution_due timestamptz,
        ticket_seq        bigint NOT NULL,
        search            tsvector GENERATED ALWAYS AS (to_tsvector('simple', subject || ' ' || description)) STORED,
        UNIQUE (tenant_id, number)
    );
    CREATE INDEX support_tickets_status ON support_tickets (tenant_id, status, number);
    CREATE INDEX support_tickets_priority ON support_tickets (tenant_id, priority, number);
    CREATE INDEX support_tickets_assignee ON support_tickets (tenant_id, assigned_to, number);
    CREATE INDEX support_tickets_customer ON support_tickets (tenant_id, customer_id, number);
    CREATE INDEX support_tickets_category ON support_tickets (tenant_id, category, number);
    CREATE INDEX support_tickets_sla ON support_tickets (tenant_id, sla_status, number);
    CREATE INDEX support_tickets_follow_up ON support_tickets (follow_up_of) WHERE follow_up_of IS NOT NULL;
    CREATE INDEX support_tickets_solved ON support_tickets (solved_at) WHERE status = 'solved';
    -- Full text and the listing's filters in one GIN (btree_gin for the scalar columns, migration 076): a listing
    -- with `q` and filters intersects their posting lists in the index instead of fetching every ticket that has
    -- the words to drop those another filter excludes (q=refund courier&status=open at 100,000 tickets: 28,502
    -- tickets fetched for 8,536 matches before). It serves `tag` alone too.
    CREATE INDEX support_tickets_text ON support_tickets USING gin (tenant_id, status, priority, assigned_to,
        customer_id, category, sla_status, tags, search);
    CREATE TABLE support_ticket_counts (
        tenant_id   text NOT NULL,
        status      text NOT NULL,
        priority    text NOT NULL,
        assigned_to text NOT NULL,  -- '' for none
        category    text NOT NULL,  -- '' for none
        n           bigint NOT NULL,
        PRIMARY KEY (tenant_id, status, priority, assigned_to, category)
    );
    CREATE TABLE support_ticket_tag_counts (
        tenant_id text NOT NULL,
        tag       text NOT NULL,
        status    text NOT NULL,
        priority  text NOT NULL,
        n         bigint NOT NULL,
        PRIMARY KEY (tenant_id, tag, status, priority)
    );
    CREATE TABLE support_ticket_entries (
        tenant_id  text NOT NULL,
        ticket_id  text NOT NULL,
        seq        bigint NOT NULL,
        kind       text NOT NULL,   -- the event's type
        actor      text NOT NULL,
        internal   boolean NOT NULL, -- notes and private comments: never shown to customers
        created_at timestamptz NOT NULL,
        data       jsonb NOT NULL,   -- the event's fields
        PRIMARY KEY (ticket_id, seq)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # A ticket's rows depend only on its own events, in seq order; different tickets' events commute. So a
        # batch runs as few statements as it can: every timeline entry, then every creation (seq 1), then the
        # other changes by seq, consecutive ones of the same statement sent together (executemany).
        await conn.executemany(_ENTRY, [_entry_args(rec) for rec in events if _in_timeline(rec)])
        steps = sorted((_step(rec) for rec in events), key=lambda step: step[0])
        run: list[tuple[object, ...]] = []
        for n, (_, sql, args) in enumerate(steps):
            run.append(args)
            if n + 1 == len(steps) or steps[n + 1][1] != sql:
                await conn.executemany(sql, run)
                run = []


def _in_timeline(rec: RecordedEvent) -> bool:
    # The clocks' bookkeeping is not part of a ticket's timeline; its SLA milestones are (and only a ticket's:
    # the SLA events of other streams pass through here too).
    return rec.stream_id.startswith("tkt_") and rec.type not in _BOOKKEEPING


def _entry_args(rec: RecordedEvent) -> tuple[object, ...]:
    actor, internal = _entry_of(rec)
    return (rec.tenant_id, rec.stream_id, rec.seq, rec.type, actor, internal, rec.created_at,
            _encoder.encode(event_fields(rec.event)).decode())


def _step(rec: RecordedEvent) -> tuple[tuple[int, int], str, tuple[object, ...]]:
    """What one event does to its ticket's row: (order key, statement, arguments)."""
    ev, order = rec.event, (rec.seq, rec.position)
    if isinstance(ev, SupportTicketCreated):
        return order, _COUNTED_CREATE, (
            rec.tenant_id, ev.ticket_id, ev.number, ev.display_number, ev.subject, ev.description, ev.customer_id,
            ev.priority, ev.category, ev.tags, ev.related_order_id, ev.session_id, ev.room_id,
            _encoder.encode(ev.attachments).decode(), ev.follow_up_of, ev.created_by, rec.created_at, rec.seq,
        )
    if isinstance(ev, SupportTicketUpdated):
        return _update(rec, ev)
    if isinstance(ev, SupportTicketCommented):
        first_response = ev.public and ev.author_type == "agent"
        return order, _COMMENTED, (rec.stream_id, rec.seq, rec.created_at, first_response)
    if isinstance(ev, SupportTicketEscalated):
        return order, _ESCALATED, (rec.stream_id, rec.seq, rec.created_at, ev.priority)
    if isinstance(ev, SupportTicketNoteAdded):
        return order, _TOUCHED, (rec.stream_id, rec.seq, rec.created_at)
    return _sla_step(rec)


# SLA events move a ticket's seq (so writers reading `ticket_seq` append at the stream's end) but not its
# `updated_at`: they are the clock's, not a change of the ticket.
_BOOKKEEPING = frozenset({"support.ticket.sla_evaluated", "sla.clock_started", "sla.clock_updated",
                          "sla.clock_stopped", *QUICK_ACTION_EVENT_TYPES})
_SEQ = "UPDATE support_tickets SET ticket_seq = $2" + _GUARD
_SLA_APPLIED = ("UPDATE support_tickets SET ticket_seq = $2, sla_policy_id = $3, sla_policy_version = $4,"
                " sla_calendar_id = $5, sla_calendar_version = $6" + _GUARD)
_SLA_EVALUATED = ("UPDATE support_tickets SET ticket_seq = $2, sla_response_due = $3, sla_resolution_due = $4,"
                  " sla_status = $5" + _GUARD)
# The timer's records only ever make the status worse (the next fold after a ticket change restates it).
_SLA_RECORDED = ("UPDATE support_tickets SET ticket_seq = $2, sla_status = CASE WHEN sla_status = 'breached'"
                 " THEN sla_status ELSE $3 END" + _GUARD)


def _sla_step(rec: RecordedEvent) -> tuple[tuple[int, int], str, tuple[object, ...]]:
    ev, order, key = rec.event, (rec.seq, rec.position), (rec.stream_id, rec.seq)
    if isinstance(ev, SupportTicketSlaApplied):
        return order, _SLA_APPLIED, (*key, ev.policy_id, ev.policy_version, ev.calendar_id, ev.calendar_version)
    if isinstance(ev, SupportTicketSlaEvaluated):
        return order, _SLA_EVALUATED, (*key, ev.response_due, ev.resolution_due, ev.status)
    if isinstance(ev, SlaBreached):
        return order, _SLA_RECORDED, (*key, "breached")
    if isinstance(ev, SlaAtRisk):
        return order, _SLA_RECORDED, (*key, "at_risk")
    return order, _SEQ, key


_COMMENTED = (
    "UPDATE support_tickets SET updated_at = $3, ticket_seq = $2, first_response_at = CASE WHEN $4"
    " THEN coalesce(first_response_at, $3) ELSE first_response_at END" + _GUARD
)
_ESCALATED = _counted_update("UPDATE support_tickets SET updated_at = $3, ticket_seq = $2, priority = $4" + _GUARD)
_COUNTED_CREATE = _counted_create()
_TOUCHED = "UPDATE support_tickets SET updated_at = $3, ticket_seq = $2" + _GUARD


def _update(rec: RecordedEvent, ev: SupportTicketUpdated) -> tuple[tuple[int, int], str, tuple[object, ...]]:
    values = {"status": ev.status, "priority": ev.priority, "assigned_to": ev.assigned_to, "tags": ev.tags,
              "category": ev.category}
    changed = [c for c in _UPDATABLE if c in ev.changed]
    sets = [f"{column} = ${n}" for n, column in enumerate(changed, start=4)]
    if "status" in changed:
        sets += ["solved_at = CASE WHEN $4 = 'solved' THEN $3 WHEN $4 = 'closed' THEN solved_at END",
                 "closed_at = CASE WHEN $4 = 'closed' THEN $3::timestamptz END"]
    sql = f"UPDATE support_tickets SET {', '.join(['updated_at = $3', 'ticket_seq = $2', *sets])}" + _GUARD
    if not {"status", "priority", "assigned_to", "category", "tags"}.isdisjoint(changed):
        sql = _counted_update(sql)
    return (rec.seq, rec.position), sql, (rec.stream_id, rec.seq, rec.created_at, *(values[c] for c in changed))


def _entry_of(rec: RecordedEvent) -> tuple[str, bool]:
    """Who wrote a ticket event, and whether it is internal."""
    ev = rec.event
    if isinstance(ev, SupportTicketCreated):
        return ev.created_by, False
    if isinstance(ev, SupportTicketCommented):
        return ev.author_id, not ev.public
    if isinstance(ev, SupportTicketNoteAdded):
        return ev.author_id, True
    if isinstance(ev, SupportTicketUpdated | SupportTicketEscalated | SupportTicketSlaApplied):
        return ev.by, False
    return rec.metadata.actor or "system", False


_TICKET_COLUMNS = """
ticket_id, number, display_number, subject, description, customer_id, priority, category, tags, status, assigned_to,
related_order_id, session_id, room_id, attachments::text AS attachments, follow_up_of, created_by, created_at,
updated_at, first_response_at, solved_at, closed_at, sla_status, ticket_seq, sla_policy_id, sla_policy_version,
sla_calendar_id, sla_calendar_version, sla_response_due, sla_resolution_due
"""
_LIST_COLUMNS = """
ticket_id, display_number, subject, customer_id, priority, category, tags, status, assigned_to, created_at,
updated_at, first_response_at, solved_at, sla_status, sla_policy_id, sla_policy_version, sla_calendar_id,
sla_calendar_version, sla_response_due, sla_resolution_due
"""


async def fetch_ticket(conn: Queryable, tenant_id: str, ticket_id: str) -> asyncpg.Record | None:
    """One ticket of the tenant."""
    return await conn.fetchrow(
        f"SELECT {_TICKET_COLUMNS} FROM support_tickets WHERE tenant_id = $1 AND ticket_id = $2", tenant_id, ticket_id,
    )


class TicketFilter(msgspec.Struct, kw_only=True):
    """What a ticket listing is limited to: every given field must match (tag: one of the ticket's tags;
    q: every word in the subject or description)."""

    status: str | None = None
    priority: str | None = None
    assigned_to: str | None = None
    customer_id: str | None = None
    category: str | None = None
    tag: str | None = None
    sla_status: str | None = None
    q: str | None = None


_CONDITIONS = {
    "status": "status = ${}", "priority": "priority = ${}", "assigned_to": "assigned_to = ${}",
    "customer_id": "customer_id = ${}", "category": "category = ${}", "tag": "tags @> ARRAY[${}::text]",
    "sla_status": "sla_status = ${}", "q": "search @@ plainto_tsquery('simple', ${})",
}


# Which filters a counts table can answer `total` for, and how it names the tag condition.
_COUNTED = frozenset({"status", "priority", "assigned_to", "category"})
_TAG_COUNTED = frozenset({"tag", "status", "priority"})
_TAG_COUNT_CONDITIONS = {**_CONDITIONS, "tag": "tag = ${}"}


def _where(where: TicketFilter, conditions: dict[str, str], tenant_id: str) -> tuple[str, list[Any]]:
    """The WHERE clause of the given filters only (so each combination gets its own plan), and its arguments."""
    args: list[Any] = [tenant_id]
    parts = ["tenant_id = $1"]
    for name, condition in conditions.items():
        value = getattr(where, name)
        if value is not None:
            args.append(value)
            parts.append(condition.format(len(args)))
    return " AND ".join(parts), args


# A full-text listing counts its matches exactly up to this many; beyond, `total` is an estimate.
EXACT_TEXT_TOTAL = 10_000


class TicketCount(msgspec.Struct, frozen=True):
    """How many tickets match a listing: exact, or (`estimate`) extrapolated from the newest ones."""

    total: int
    estimate: bool = False


async def list_tickets(
    conn: Queryable, tenant_id: str, where: TicketFilter, *, limit: int, offset: int,
    exact_up_to: int = EXACT_TEXT_TOTAL,
) -> tuple[list[asyncpg.Record], TicketCount]:
    """A page of the tenant's tickets matching `where`, newest first, and how many match in all (with `q`: exactly
    up to `exact_up_to` matches, else an estimate)."""
    sql_where, args = _where(where, _CONDITIONS, tenant_id)
    page = f"ORDER BY number DESC LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    if where.q is None:
        rows = await conn.fetch(f"SELECT {_LIST_COLUMNS} FROM support_tickets WHERE {sql_where} {page}",
                                *args, limit, offset)
        return rows, await _count(conn, where, sql_where, args)
    # Planned for the words given (a generic plan, which asyncpg's prepared statements get after five runs, is one
    # plan for a word in half the tickets and for one in none).
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    if any(getattr(where, name) is not None for name in _CONDITIONS if name != "q"):
        # With other filters, first up to `exact_up_to` + 1 matches in no order, numbers only: the planner can
        # combine the full-text index with the filter's into one bitmap (ordered by number, it misjudged how
        # rare both together are and walked the numbers down). When that is all of them, their count is the
        # total and the page is cut from them, in one statement reading each match once.
        found = await conn.fetch(
            f"WITH matches AS MATERIALIZED (SELECT number FROM support_tickets WHERE {sql_where}"
            f" LIMIT {int(exact_up_to) + 1}),"
            f" page AS (SELECT number FROM matches ORDER BY number DESC LIMIT ${len(args) + 1}"
            f" OFFSET ${len(args) + 2})"
            f" SELECT (SELECT count(*) FROM matches)::int AS matched, {_LIST_COLUMNS} FROM (SELECT) AS one"
            f" LEFT JOIN (page JOIN support_tickets t ON t.tenant_id = $1 AND t.number = page.number) ON true"
            f" ORDER BY page.number DESC", *args, limit, offset)
        if found[0]["matched"] <= exact_up_to:
            return [r for r in found if r["ticket_id"] is not None], TicketCount(found[0]["matched"])
    count = await _text_count(conn, sql_where, args, exact_up_to)
    if count.estimate:
        # Many matches: walking the numbers down finds a page's worth soonest.
        rows = await conn.fetch(f"SELECT {_LIST_COLUMNS} FROM support_tickets WHERE {sql_where} {page}",
                                *args, limit, offset)
    else:
        # At most `exact_up_to`: fetched through the full-text index and sorted, instead of a walk down the numbers
        # that, for a rare word, reads every ticket to find none.
        rows = await conn.fetch(f"WITH matches AS MATERIALIZED (SELECT number, {_LIST_COLUMNS} FROM support_tickets"
                                f" WHERE {sql_where}) SELECT {_LIST_COLUMNS} FROM matches {page}",
                                *args, limit, offset)
    return rows, count


async def _count(conn: Queryable, where: TicketFilter, sql_where: str, args: list[Any]) -> TicketCount:
    """How many tickets match a listing without `q`. Filters on counted fields alone (none given included) add up
    the counts; others count the matching rows."""
    given = {name for name in _CONDITIONS if getattr(where, name) is not None}
    if given <= _COUNTED:
        total = await conn.fetchval(f"SELECT coalesce(sum(n), 0) FROM support_ticket_counts WHERE {sql_where}", *args)
    elif given <= _TAG_COUNTED:
        tag_where, _ = _where(where, _TAG_COUNT_CONDITIONS, args[0])
        total = await conn.fetchval(f"SELECT coalesce(sum(n), 0) FROM support_ticket_tag_counts WHERE {tag_where}",
                                    *args)
    else:
        total = await conn.fetchval(f"SELECT count(*) FROM support_tickets WHERE {sql_where}", *args)
    return TicketCount(int(total))


async def _text_count(conn: Queryable, sql_where: str, args: list[Any], exact_up_to: int) -> TicketCount:
    """Count the matches newest first, stopping after `exact_up_to`: a common word (in half the tickets) costs that
    many rows, not every match. Past it, the share of matches among the tickets numbered from the last one counted
    to the newest (numbers are gapless), applied to all the tenant's tickets, is the estimate."""
    row = await conn.fetchrow(
        f"SELECT count(*)::int AS n, min(number) AS lowest FROM (SELECT number FROM support_tickets"
        f" WHERE {sql_where} ORDER BY number DESC LIMIT {int(exact_up_to) + 1}) AS newest", *args)
    assert row is not None
    if row["n"] <= exact_up_to:
        return TicketCount(row["n"])
    newest = await conn.fetchval("SELECT max(number) FROM support_tickets WHERE tenant_id = $1", args[0])
    return TicketCount(max(row["n"], round(row["n"] * newest / (newest - row["lowest"] + 1))), estimate=True)


async def ticket_entries(conn: Queryable, ticket_id: str, *, internal: bool) -> list[asyncpg.Record]:
    """The ticket's timeline in seq order; internal entries only when `internal`."""
    return await conn.fetch(
        "SELECT seq, kind, actor, internal, created_at, data::text AS data FROM support_ticket_entries"
        " WHERE ticket_id = $1 AND ($2 OR NOT internal) ORDER BY seq", ticket_id, internal,
    )


async def latest_customer_comment(conn: Queryable, ticket_id: str) -> str | None:
    """The words of the ticket's latest comment by its customer, if any."""
    value: str | None = await conn.fetchval(
        "SELECT data->>'content' FROM support_ticket_entries WHERE ticket_id = $1 AND kind = 'support.ticket.commented'"
        " AND data->>'author_type' = 'customer' ORDER BY seq DESC LIMIT 1", ticket_id)
    return value


async def follow_ups(conn: Queryable, tenant_id: str, ticket_id: str) -> list[str]:
    """The tickets that follow up `ticket_id`, oldest first."""
    rows = await conn.fetch("SELECT ticket_id FROM support_tickets WHERE tenant_id = $1 AND follow_up_of = $2"
                            " ORDER BY number", tenant_id, ticket_id)
    return [r["ticket_id"] for r in rows]


async def tickets_due_to_close(conn: Queryable, now: datetime, *, limit: int) -> list[asyncpg.Record]:
    """Solved tickets of every tenant whose tenant's auto-close days (4 unless set) have passed at `now`."""
    return await conn.fetch(
        "SELECT t.tenant_id, t.ticket_id FROM support_tickets t"
        " LEFT JOIN support_desk_settings d ON d.tenant_id = t.tenant_id"
        " WHERE t.status = 'solved'"
        " AND t.solved_at <= $1::timestamptz - make_interval(days => coalesce(d.ticket_auto_close_days, 4))"
        " ORDER BY t.solved_at LIMIT $2", now, limit,
    )
