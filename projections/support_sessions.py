"""Support sessions read model: each session's status, assignment and outcome, and its routing record.

Session events come from the session's own stream (in seq order, guarded by `session_seq`); assignments
come from the desk stream and are recorded once per log position. The two streams commit in any order
relative to each other, while replay applies them by position, so their updates commute: an assignment
only answers the wait it was made for (`arrival`) and only moves a waiting session to active; a transfer
or escalation starts a new wait; an end never clears the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from schemas.events import (
    RecordedEvent,
    SupportQuickActionCompleted,
    SupportQuickActionExecuted,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionHeld,
    SupportSessionRated,
    SupportSessionResumed,
    SupportSessionTransferred,
)

_encoder = msgspec.json.Encoder()

_CREATE = """
INSERT INTO support_sessions (tenant_id, session_id, room_id, customer_id, channel, priority, skills, language,
    team_id, context, initial_message, status, created_at, queued_at, arrival, session_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, 'queued', $12, $12, $13, $14)
ON CONFLICT (session_id) DO NOTHING
"""
_ASSIGN = """
UPDATE support_sessions
SET agent_id = $2, assigned_at = $3, target_agent = NULL, assign_position = $4,
    status = CASE WHEN status IN ('queued', 'transferred') THEN 'active' ELSE status END
WHERE session_id = $1 AND assign_position < $4 AND ($5::bigint = 0 OR arrival = $5::bigint)
"""
_RECORD = """
INSERT INTO support_assignments (tenant_id, session_id, position, agent_id, policy_version, candidates,
    waited_seconds, assigned_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
ON CONFLICT (session_id, position) DO NOTHING
"""
_GUARD = " WHERE session_id = $1 AND session_seq < $2"
_STATEMENTS = {
    SupportSessionHeld: "UPDATE support_sessions SET status = 'on_hold', session_seq = $2" + _GUARD,
    SupportSessionResumed: "UPDATE support_sessions SET status = 'active', session_seq = $2" + _GUARD,
    # Quick actions run on a session are recorded in its stream; they change nothing here but its seq.
    SupportQuickActionExecuted: "UPDATE support_sessions SET session_seq = $2" + _GUARD,
    SupportQuickActionCompleted: "UPDATE support_sessions SET session_seq = $2" + _GUARD,
}


class SupportSessionsProjection:
    name = "support_sessions"
    version = 1
    tables = ("support_sessions", "support_assignments")
    handles = frozenset({
        "support.session.created", "support.session.assigned", "support.session.held", "support.session.resumed",
        "support.session.transferred", "support.session.escalated", "support.session.ended", "support.session.rated",
        "support.quick_action.executed", "support.quick_action.completed",
    })
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE support_sessions (
        tenant_id        text NOT NULL,
        session_id       text PRIMARY KEY,
        room_id          text NOT NULL,
        customer_id      text NOT NULL,
        channel          text NOT NULL,
        priority         text NOT NULL,
        skills           text[] NOT NULL,
        language         text,
        team_id          text,
        target_agent     text,
        context          jsonb,
        initial_message  text,
        status           text NOT NULL,
        agent_id         text,
        escalation_level text,
        created_at       timestamptz NOT NULL,
        queued_at        timestamptz NOT NULL,  -- when it last started waiting
        arrival          bigint NOT NULL,       -- log position it started waiting at: FIFO within a priority
        assigned_at      timestamptz,
        ended_at         timestamptz,
        resolution       text,
        resolution_notes text,
        tags             text[] NOT NULL DEFAULT '{}',
        rating           int,
        rating_comment   text,
        session_seq      bigint NOT NULL,
        assign_position  bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX support_sessions_waiting ON support_sessions (tenant_id, arrival)
        WHERE status IN ('queued', 'transferred');
    CREATE INDEX support_sessions_agent ON support_sessions (tenant_id, agent_id) WHERE status IN ('active', 'on_hold');
    CREATE INDEX support_sessions_tenant ON support_sessions (tenant_id, created_at, session_id);
    CREATE TABLE support_assignments (
        tenant_id      text NOT NULL,
        session_id     text NOT NULL,
        position       bigint NOT NULL,
        agent_id       text NOT NULL,
        policy_version text NOT NULL,
        candidates     jsonb NOT NULL,
        waited_seconds double precision NOT NULL,
        assigned_at    timestamptz NOT NULL,
        PRIMARY KEY (session_id, position)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            await _apply_one(conn, rec)


async def _apply_one(conn: Connection, rec: RecordedEvent) -> None:
    ev = rec.event
    if isinstance(ev, SupportSessionCreated):
        await conn.execute(_CREATE, rec.tenant_id, ev.session_id, ev.room_id, ev.customer_id, ev.channel, ev.priority,
                           ev.skills, ev.language, ev.team_id, _json(ev.context), ev.initial_message, rec.created_at,
                           rec.position, rec.seq)
    elif isinstance(ev, SupportSessionAssigned):
        await conn.execute(_RECORD, rec.tenant_id, ev.session_id, rec.position, ev.agent_id, ev.policy_version,
                           _encoder.encode(ev.candidates).decode(), ev.waited_seconds, rec.created_at)
        await conn.execute(_ASSIGN, ev.session_id, ev.agent_id, rec.created_at, rec.position, ev.arrival)
    elif isinstance(ev, SupportSessionTransferred):
        team, agent = (ev.target_id, None) if ev.target_type == "team" else (None, ev.target_id)
        await conn.execute(
            "UPDATE support_sessions SET status = 'transferred', agent_id = NULL, assigned_at = NULL,"
            " team_id = coalesce($3, team_id), target_agent = $4, queued_at = $5, arrival = $6, session_seq = $2"
            + _GUARD,
            rec.stream_id, rec.seq, team, agent, rec.created_at, rec.position,
        )
    elif isinstance(ev, SupportSessionEscalated):
        await conn.execute(
            "UPDATE support_sessions SET status = 'transferred', agent_id = NULL, assigned_at = NULL, priority = $3,"
            " escalation_level = $4, team_id = coalesce($5, team_id), target_agent = NULL, queued_at = $6,"
            " arrival = $7, session_seq = $2" + _GUARD,
            rec.stream_id, rec.seq, ev.priority, ev.level, ev.team_id, rec.created_at, rec.position,
        )
    elif isinstance(ev, SupportSessionEnded):
        await conn.execute(
            "UPDATE support_sessions SET status = $3, resolution = $4, resolution_notes = $5, tags = $6,"
            " ended_at = $7, session_seq = $2" + _GUARD,
            rec.stream_id, rec.seq, ev.status, ev.resolution, ev.resolution_notes, ev.tags, rec.created_at,
        )
    elif isinstance(ev, SupportSessionRated):
        await conn.execute(
            "UPDATE support_sessions SET rating = $3, rating_comment = $4, session_seq = $2" + _GUARD,
            rec.stream_id, rec.seq, ev.score, ev.comment,
        )
    elif type(ev) in _STATEMENTS:
        await conn.execute(_STATEMENTS[type(ev)], rec.stream_id, rec.seq)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _encoder.encode(value).decode()


_SESSION_COLUMNS = """
session_id, room_id, customer_id, channel, priority, skills, language, team_id, target_agent, context::text AS context,
initial_message, status, agent_id, escalation_level, created_at, queued_at, arrival, assigned_at, ended_at, resolution,
rating, session_seq
"""


async def fetch_session(conn: Queryable, tenant_id: str, session_id: str) -> asyncpg.Record | None:
    """One session of the tenant."""
    return await conn.fetchrow(
        f"SELECT {_SESSION_COLUMNS} FROM support_sessions WHERE tenant_id = $1 AND session_id = $2",
        tenant_id, session_id,
    )


async def list_sessions(
    conn: Queryable, tenant_id: str, *, status: str | None, agent_id: str | None, customer_id: str | None,
    team_id: str | None, limit: int, offset: int,
) -> list[asyncpg.Record]:
    """The tenant's sessions matching every given filter, oldest first."""
    return await conn.fetch(
        f"SELECT {_SESSION_COLUMNS} FROM support_sessions WHERE tenant_id = $1"
        " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR agent_id = $3)"
        " AND ($4::text IS NULL OR customer_id = $4) AND ($5::text IS NULL OR team_id = $5)"
        " ORDER BY created_at, session_id LIMIT $6 OFFSET $7",
        tenant_id, status, agent_id, customer_id, team_id, limit, offset,
    )


async def waiting_sessions(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's sessions waiting for an agent, in arrival order."""
    return await conn.fetch(
        f"SELECT {_SESSION_COLUMNS} FROM support_sessions WHERE tenant_id = $1"
        " AND status IN ('queued', 'transferred') ORDER BY arrival", tenant_id,
    )


async def recent_handle_seconds(conn: Queryable, tenant_id: str, *, sample: int = 20) -> float | None:
    """The mean time from assignment to end of the tenant's latest ended sessions, if any ended."""
    value = await conn.fetchval(
        "SELECT avg(extract(epoch FROM ended_at - assigned_at)) FROM (SELECT ended_at, assigned_at"
        " FROM support_sessions WHERE tenant_id = $1 AND ended_at IS NOT NULL AND assigned_at IS NOT NULL"
        " ORDER BY ended_at DESC LIMIT $2) recent", tenant_id, sample,
    )
    return None if value is None else float(value)


async def routing_records(conn: Queryable, session_id: str) -> list[asyncpg.Record]:
    """A session's assignments in log order."""
    return await conn.fetch(
        "SELECT agent_id, policy_version, candidates::text AS candidates, waited_seconds, assigned_at"
        " FROM support_assignments WHERE session_id = $1 ORDER BY position", session_id,
    )
