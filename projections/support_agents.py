"""Support agents and teams read model: profiles, statuses and teams from each tenant's desk stream."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import (
    RecordedEvent,
    SupportAgentProfileSet,
    SupportAgentStatusChanged,
    SupportDeskSettingsSet,
    SupportSessionAssigned,
    SupportTeamSaved,
)

_PROFILE = """
INSERT INTO support_agents AS a (tenant_id, agent_id, max_sessions, skills, languages, teams, profile_position)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, agent_id) DO UPDATE
SET max_sessions = EXCLUDED.max_sessions, skills = EXCLUDED.skills, languages = EXCLUDED.languages,
    teams = EXCLUDED.teams, profile_position = EXCLUDED.profile_position
WHERE a.profile_position < EXCLUDED.profile_position
"""
_STATUS = """
INSERT INTO support_agents AS a (tenant_id, agent_id, status, reason, return_time, status_position)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, agent_id) DO UPDATE
SET status = EXCLUDED.status, reason = EXCLUDED.reason, return_time = EXCLUDED.return_time,
    status_position = EXCLUDED.status_position
WHERE a.status_position < EXCLUDED.status_position
"""
_ASSIGNED = """
UPDATE support_agents SET last_assigned = $3 WHERE tenant_id = $1 AND agent_id = $2 AND last_assigned < $3
"""
_TEAM = """
INSERT INTO support_teams AS t (tenant_id, team_id, name, members, required_skills, escalation_level, created_at,
                                updated_position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant_id, team_id) DO UPDATE
SET name = EXCLUDED.name, members = EXCLUDED.members, required_skills = EXCLUDED.required_skills,
    escalation_level = EXCLUDED.escalation_level, updated_position = EXCLUDED.updated_position
WHERE t.updated_position < EXCLUDED.updated_position
"""

_SETTINGS = """
INSERT INTO support_desk_settings AS d (tenant_id, refuse_without_agents, set_by, updated_at, updated_position,
                                      ticket_auto_close_days)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id) DO UPDATE
SET refuse_without_agents = EXCLUDED.refuse_without_agents, set_by = EXCLUDED.set_by,
    ticket_auto_close_days = EXCLUDED.ticket_auto_close_days,
    updated_at = EXCLUDED.updated_at, updated_position = EXCLUDED.updated_position
WHERE d.updated_position < EXCLUDED.updated_position
"""


class SupportAgentsProjection:
    name = "support_agents"
    version = 3  # 2: the tenant's desk settings; 3: with the tickets' auto-close days
    tables = ("support_agents", "support_teams", "support_desk_settings")
    handles = frozenset({"support.agent.profile_set", "support.agent.status_changed", "support.session.assigned",
                         "support.team.saved", "support.desk.settings_set"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE support_agents (
        tenant_id        text NOT NULL,
        agent_id         text NOT NULL,
        max_sessions     int NOT NULL DEFAULT 0,
        skills           text[] NOT NULL DEFAULT '{}',
        languages        text[] NOT NULL DEFAULT '{}',
        teams            text[] NOT NULL DEFAULT '{}',
        status           text NOT NULL DEFAULT 'offline',
        reason           text,
        return_time      timestamptz,
        last_assigned    bigint NOT NULL DEFAULT 0,  -- position of the agent's latest assignment
        profile_position bigint NOT NULL DEFAULT 0,
        status_position  bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, agent_id)
    );
    CREATE TABLE support_teams (
        tenant_id        text NOT NULL,
        team_id          text NOT NULL,
        name             text NOT NULL,
        members          text[] NOT NULL,
        required_skills  text[] NOT NULL,
        escalation_level text,
        created_at       timestamptz NOT NULL,
        updated_position bigint NOT NULL,
        PRIMARY KEY (tenant_id, team_id)
    );
    CREATE TABLE support_desk_settings (
        tenant_id             text PRIMARY KEY,
        refuse_without_agents boolean NOT NULL,
        ticket_auto_close_days int NOT NULL DEFAULT 4,
        set_by                text NOT NULL,
        updated_at            timestamptz NOT NULL,
        updated_position      bigint NOT NULL
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            ev = rec.event
            if isinstance(ev, SupportAgentProfileSet):
                await conn.execute(_PROFILE, rec.tenant_id, ev.agent_id, ev.max_sessions, ev.skills, ev.languages,
                                   ev.teams, rec.position)
            elif isinstance(ev, SupportAgentStatusChanged):
                await conn.execute(_STATUS, rec.tenant_id, ev.agent_id, ev.status, ev.reason, ev.return_time,
                                   rec.position)
            elif isinstance(ev, SupportSessionAssigned):
                await conn.execute(_ASSIGNED, rec.tenant_id, ev.agent_id, rec.position)
            elif isinstance(ev, SupportTeamSaved):
                await conn.execute(_TEAM, rec.tenant_id, ev.team_id, ev.name, ev.members, ev.required_skills,
                                   ev.escalation_level, rec.created_at, rec.position)
            elif isinstance(ev, SupportDeskSettingsSet):
                await conn.execute(_SETTINGS, rec.tenant_id, ev.refuse_without_agents, ev.by, rec.created_at,
                                   rec.position, ev.ticket_auto_close_days)


_AGENT_COLUMNS = """
a.agent_id, a.max_sessions, a.skills, a.languages, a.teams, a.status, a.reason, a.return_time, a.last_assigned,
(SELECT count(*) FROM support_sessions s WHERE s.tenant_id = a.tenant_id AND s.agent_id = a.agent_id
   AND s.status IN ('active', 'on_hold'))::int AS active
"""


async def desk_agents(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """Every agent with a profile, with their live session count, ordered by agent id (one pass over the
    tenant's live sessions, not a count per agent)."""
    return await conn.fetch(
        "SELECT a.agent_id, a.max_sessions, a.skills, a.languages, a.teams, a.status, a.reason, a.return_time,"
        " a.last_assigned, coalesce(l.active, 0)::int AS active"
        " FROM support_agents a LEFT JOIN (SELECT agent_id, count(*) AS active FROM support_sessions"
        "   WHERE tenant_id = $1 AND status IN ('active', 'on_hold') GROUP BY agent_id) l ON l.agent_id = a.agent_id"
        " WHERE a.tenant_id = $1 AND a.profile_position > 0 ORDER BY a.agent_id", tenant_id,
    )


async def fetch_agent(conn: Queryable, tenant_id: str, agent_id: str) -> asyncpg.Record | None:
    """One agent with a profile, with their live session count; None when they have none."""
    return await conn.fetchrow(
        f"SELECT {_AGENT_COLUMNS} FROM support_agents a WHERE a.tenant_id = $1 AND a.agent_id = $2"
        " AND a.profile_position > 0", tenant_id, agent_id,
    )


async def fetch_team(conn: Queryable, tenant_id: str, team_id: str) -> asyncpg.Record | None:
    """One team of the tenant."""
    return await conn.fetchrow(
        "SELECT team_id, name, members, required_skills, escalation_level, created_at FROM support_teams"
        " WHERE tenant_id = $1 AND team_id = $2", tenant_id, team_id,
    )


async def list_teams(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's teams by id."""
    return await conn.fetch(
        "SELECT team_id, name, members, required_skills, escalation_level, created_at FROM support_teams"
        " WHERE tenant_id = $1 ORDER BY team_id", tenant_id,
    )


async def team_for_level(conn: Queryable, tenant_id: str, level: str) -> str | None:
    """The team escalations of `level` route to (the first by id), if any."""
    value = await conn.fetchval(
        "SELECT team_id FROM support_teams WHERE tenant_id = $1 AND escalation_level = $2 ORDER BY team_id LIMIT 1",
        tenant_id, level,
    )
    return None if value is None else str(value)


async def fetch_desk_settings(conn: Queryable, tenant_id: str) -> asyncpg.Record | None:
    """The tenant's desk settings; None while the tenant never set them."""
    return await conn.fetchrow(
        "SELECT refuse_without_agents, ticket_auto_close_days, set_by, updated_at FROM support_desk_settings"
        " WHERE tenant_id = $1", tenant_id,
    )
