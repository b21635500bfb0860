"""Agents and teams: profiles and statuses set in the desk stream, each followed by routing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
from msgspec import UNSET

from eventstore.append import record_from_row
from projections.support_agents import fetch_agent, fetch_desk_settings, fetch_team
from projections.support_analytics import agent_day
from schemas import support as s
from schemas.errors import AgentNotFound, Forbidden, TeamExists, TeamNotFound, ValidationError
from schemas.events import (
    Event,
    SupportAgentProfileSet,
    SupportAgentStatusChanged,
    SupportDeskSettingsSet,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionTransferred,
    SupportTeamSaved,
)
from service.commands.metadata import metadata_for
from service.commands.support.desk import desk_stream
from service.commands.support.router import connection_check, route_tenant
from service.domain.authorization import authorize
from service.domain.support.replay import HistoryItem, simulate
from service.domain.support.routing import Policy
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

SESSION_EVENTS = (SupportSessionCreated, SupportSessionEnded, SupportSessionEscalated, SupportSessionTransferred)


async def _append_desk(runtime: Runtime, principal: Principal, events: list[Event]) -> None:
    await runtime.appender.append(desk_stream(principal.tenant_id), events, tenant_id=principal.tenant_id,
                                  metadata=metadata_for(principal), create_stream=True)


async def set_profile(runtime: Runtime, principal: Principal, agent_id: str, cmd: s.AgentProfile) -> asyncpg.Record:
    """An admin makes a tenant agent (or admin) part of the desk, or changes their capacity and skills."""
    authorize("support.agents.manage", principal.role)
    role = await runtime.pool.fetchval("SELECT role FROM users WHERE tenant_id = $1 AND user_id = $2",
                                       principal.tenant_id, agent_id)
    if role not in ("agent", "admin"):
        raise AgentNotFound("no user with the role agent or admin has this id", field="agent_id")
    await _append_desk(runtime, principal, [SupportAgentProfileSet(
        agent_id=agent_id, max_sessions=cmd.max_sessions, skills=sorted(set(cmd.skills)),
        languages=sorted(set(cmd.languages)), teams=sorted(set(cmd.teams)), set_by=principal.user_id,
    )])
    await route_tenant(runtime, principal.tenant_id)
    return await require_agent(runtime, principal.tenant_id, agent_id)


async def require_agent(runtime: Runtime, tenant_id: str, agent_id: str) -> asyncpg.Record:
    """The agent's row, or AGENT_NOT_FOUND."""
    row = await fetch_agent(runtime.pool, tenant_id, agent_id)
    if row is None:
        raise AgentNotFound("no such agent", field="agent_id")
    return row


async def set_status(runtime: Runtime, principal: Principal, agent_id: str, cmd: s.SetAgentStatus) -> asyncpg.Record:
    """An agent sets their own status (admins anyone's); becoming available routes the queue at once."""
    authorize("support.agent.status", principal.role)
    if principal.user_id != agent_id and principal.role not in ("admin", "platform"):
        raise Forbidden("agents set their own status only", field="agent_id")
    await require_agent(runtime, principal.tenant_id, agent_id)
    await _append_desk(runtime, principal, [SupportAgentStatusChanged(
        agent_id=agent_id, status=cmd.status, by=principal.user_id, reason=cmd.reason, return_time=cmd.return_time,
    )])
    await route_tenant(runtime, principal.tenant_id)
    return await require_agent(runtime, principal.tenant_id, agent_id)


async def agent_status(runtime: Runtime, tenant_id: str, row: asyncpg.Record, *, now: datetime) -> s.AgentStatus:
    """The seed's agent status: `busy` when available but at capacity, and today's metrics (UTC day, from the
    analytics facts: a moment behind the log)."""
    since = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    metrics = await agent_day(runtime.pool, tenant_id, row["agent_id"], since)
    name = await runtime.pool.fetchval("SELECT display_name FROM users WHERE tenant_id = $1 AND user_id = $2",
                                       tenant_id, row["agent_id"])
    status, reason = row["status"], row["reason"]
    connected = None
    if runtime.settings.support_require_connection:
        connected = (await connection_check(runtime, tenant_id, [row["agent_id"]]))(row["agent_id"])
    if status == "available" and connected is False:
        status, reason = "offline", "no live connection: routing skips this agent until one opens"
    elif status == "available" and row["active"] >= row["max_sessions"]:
        status = "busy"
    handled = metrics["handled"]
    return s.AgentStatus(
        agent_id=row["agent_id"], name=name or row["agent_id"], status=status, active_sessions=row["active"],
        max_sessions=row["max_sessions"], skills=list(row["skills"]), languages=list(row["languages"]),
        teams=list(row["teams"]), reason=reason, return_time=row["return_time"], connected=connected,
        metrics_today=s.MetricsToday(
            sessions_handled=handled, avg_response_time_seconds=metrics["response"],
            satisfaction_score=metrics["rating"],
            resolution_rate=round(100 * metrics["resolved"] / handled, 1) if handled else None,
        ),
    )


def team_view(row: asyncpg.Record) -> s.Team:
    """The API view of a team row."""
    return s.Team(team_id=row["team_id"], name=row["name"], members=list(row["members"]),
                  required_skills=list(row["required_skills"]), escalation_level=row["escalation_level"],
                  created_at=row["created_at"])


async def create_team(runtime: Runtime, principal: Principal, cmd: s.CreateTeam) -> asyncpg.Record:
    """A new team (409 TEAM_EXISTS when the id is taken)."""
    authorize("support.teams.manage", principal.role)
    team_id = cmd.team_id or new_id("team")
    if await fetch_team(runtime.pool, principal.tenant_id, team_id) is not None:
        raise TeamExists("a team with this id exists", field="team_id")
    await _append_desk(runtime, principal, [SupportTeamSaved(
        team_id=team_id, name=cmd.name, members=sorted(set(cmd.members)),
        required_skills=sorted(set(cmd.required_skills)), by=principal.user_id, escalation_level=cmd.escalation_level,
    )])
    await route_tenant(runtime, principal.tenant_id)
    row = await fetch_team(runtime.pool, principal.tenant_id, team_id)
    assert row is not None
    return row


async def update_team(runtime: Runtime, principal: Principal, team_id: str, cmd: s.UpdateTeam) -> asyncpg.Record:
    """Change a team's name, members, required skills or escalation level (the whole team is restated)."""
    authorize("support.teams.manage", principal.role)
    row = await fetch_team(runtime.pool, principal.tenant_id, team_id)
    if row is None:
        raise TeamNotFound("no such team", field="team_id")
    if all(v is UNSET for v in (cmd.name, cmd.members, cmd.required_skills, cmd.escalation_level)):
        raise ValidationError("nothing to update: give name, members, required_skills or escalation_level")
    await _append_desk(runtime, principal, [SupportTeamSaved(
        team_id=team_id,
        name=row["name"] if cmd.name is UNSET else cmd.name,
        members=list(row["members"]) if cmd.members is UNSET else sorted(set(cmd.members)),
        required_skills=list(row["required_skills"]) if cmd.required_skills is UNSET
        else sorted(set(cmd.required_skills)),
        by=principal.user_id,
        escalation_level=row["escalation_level"] if cmd.escalation_level is UNSET else cmd.escalation_level,
    )])
    await route_tenant(runtime, principal.tenant_id)
    updated = await fetch_team(runtime.pool, principal.tenant_id, team_id)
    assert updated is not None
    return updated


async def desk_settings(runtime: Runtime, tenant_id: str) -> s.DeskSettings:
    """The tenant's desk settings, or the service's defaults while the tenant never set them."""
    row = await fetch_desk_settings(runtime.pool, tenant_id)
    if row is None:
        return s.DeskSettings(refuse_without_agents=runtime.settings.support_refuse_without_agents, inherited=True)
    return s.DeskSettings(refuse_without_agents=row["refuse_without_agents"], inherited=False,
                          ticket_auto_close_days=row["ticket_auto_close_days"], set_by=row["set_by"],
                          updated_at=row["updated_at"])


async def set_desk_settings(runtime: Runtime, principal: Principal, cmd: s.DeskSettingsBody) -> s.DeskSettings:
    """A tenant admin sets the desk's settings (the whole set, in the desk stream)."""
    authorize("support.settings.manage", principal.role)
    await _append_desk(runtime, principal, [SupportDeskSettingsSet(
        refuse_without_agents=cmd.refuse_without_agents, by=principal.user_id,
        ticket_auto_close_days=cmd.ticket_auto_close_days,
    )])
    return await desk_settings(runtime, principal.tenant_id)


async def replay_policy(runtime: Runtime, principal: Principal, policy: Policy) -> s.ReplayReport:
    """Route the tenant's whole desk history again under `policy` and report waits and assignments per agent."""
    authorize("support.policy.replay", principal.role)
    rows = await runtime.pool.fetch(
        "SELECT position, stream_id, seq, tenant_id, created_at, data::text AS data, metadata::text AS metadata"
        " FROM events WHERE tenant_id = $1 AND type LIKE 'support.%' ORDER BY position", principal.tenant_id,
    )
    history = []
    for row in rows:
        rec = record_from_row(row)
        session_id = rec.stream_id if isinstance(rec.event, SESSION_EVENTS) else None
        history.append(HistoryItem(rec.event, rec.created_at, rec.position, session_id))
    outcome = simulate(history, policy)
    return s.ReplayReport(
        policy_version=outcome.policy_version, sessions=outcome.sessions, assigned=len(outcome.waits),
        wait_p50_seconds=outcome.wait_p50, wait_max_seconds=outcome.wait_max,
        per_agent=[s.AgentReplay(a, n) for a, n in sorted(outcome.per_agent.items())],
        same_as_recorded=outcome.same_as_recorded,
    )
