"""Support agents and teams (seed 001 "Agent Management", under /support): profiles, statuses, teams."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from projections.support_agents import desk_agents, fetch_team, list_teams
from schemas import support as s
from schemas.errors import AgentNotFound, Forbidden, NotTenantAdmin, TeamExists, TeamNotFound
from service.commands.support import agents as commands
from service.domain.support.routing import POLICIES
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, caller_may, runtime_of


async def get_agents(request: Request) -> Response:
    principal = await caller_may(request, "support.agents.read")
    runtime = runtime_of(request)
    now = datetime.now(UTC)
    rows = await desk_agents(runtime.pool, principal.tenant_id)
    return JSON([await commands.agent_status(runtime, principal.tenant_id, r, now=now) for r in rows])


async def put_agent(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.AgentProfile)
    runtime = runtime_of(request)
    row = await commands.set_profile(runtime, principal, request.path_params["agent_id"], cmd)
    return JSON(await commands.agent_status(runtime, principal.tenant_id, row, now=datetime.now(UTC)))


async def get_agent_status(request: Request) -> Response:
    principal = await caller_may(request, "support.agents.read")
    runtime = runtime_of(request)
    row = await commands.require_agent(runtime, principal.tenant_id, request.path_params["agent_id"])
    return JSON(await commands.agent_status(runtime, principal.tenant_id, row, now=datetime.now(UTC)))


async def put_agent_status(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.SetAgentStatus)
    runtime = runtime_of(request)
    row = await commands.set_status(runtime, principal, request.path_params["agent_id"], cmd)
    return JSON(await commands.agent_status(runtime, principal.tenant_id, row, now=datetime.now(UTC)))


async def post_team(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.CreateTeam)
    return JSON(commands.team_view(await commands.create_team(runtime_of(request), principal, cmd)), status_code=201)


async def get_teams(request: Request) -> Response:
    principal = await caller_may(request, "support.teams.read")
    return JSON([commands.team_view(r) for r in await list_teams(runtime_of(request).pool, principal.tenant_id)])


async def get_team(request: Request) -> Response:
    principal = await caller_may(request, "support.teams.read")
    row = await fetch_team(runtime_of(request).pool, principal.tenant_id, request.path_params["team_id"])
    if row is None:
        raise TeamNotFound("no such team", field="team_id")
    return JSON(commands.team_view(row))


async def patch_team(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.UpdateTeam)
    row = await commands.update_team(runtime_of(request), principal, request.path_params["team_id"], cmd)
    return JSON(commands.team_view(row))


async def post_replay(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.ReplayRequest)
    return JSON(await commands.replay_policy(runtime_of(request), principal, POLICIES[cmd.policy]))


async def get_settings(request: Request) -> Response:
    principal = await caller_may(request, "support.settings.read")
    return JSON(await commands.desk_settings(runtime_of(request), principal.tenant_id))


async def put_settings(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.DeskSettingsBody)
    return JSON(await commands.set_desk_settings(runtime_of(request), principal, cmd))


_AGENT = "/support/agents/{agent_id}"
_TEAM = "/support/teams/{team_id}"

ENDPOINTS = [
    Endpoint("GET", "/support/agents", get_agents, "The desk's agents with status, load and today's metrics",
             response=list[s.AgentStatus], errors=(Forbidden,)),
    Endpoint("PUT", _AGENT, put_agent, "Make a tenant agent part of the desk or change their profile (admins)",
             body=s.AgentProfile, response=s.AgentStatus, errors=(AgentNotFound, NotTenantAdmin)),
    Endpoint("GET", f"{_AGENT}/status", get_agent_status, "An agent's status, load and today's metrics",
             response=s.AgentStatus, errors=(AgentNotFound, Forbidden)),
    Endpoint("PUT", f"{_AGENT}/status", put_agent_status, "Set an agent's status (the agent, or admins)",
             body=s.SetAgentStatus, response=s.AgentStatus, errors=(AgentNotFound, Forbidden)),
    Endpoint("POST", "/support/teams", post_team, "Create a team (admins)", body=s.CreateTeam, response=s.Team,
             status=201, errors=(TeamExists, NotTenantAdmin)),
    Endpoint("GET", "/support/teams", get_teams, "The tenant's teams", response=list[s.Team], errors=(Forbidden,)),
    Endpoint("GET", _TEAM, get_team, "One team", response=s.Team, errors=(TeamNotFound, Forbidden)),
    Endpoint("PATCH", _TEAM, patch_team, "Change a team (admins)", body=s.UpdateTeam, response=s.Team,
             errors=(TeamNotFound, NotTenantAdmin)),
    Endpoint("POST", "/support/routing/replay", post_replay,
             "Route the tenant's desk history again under a policy: waits and assignments per agent (admins)",
             body=s.ReplayRequest, response=s.ReplayReport, errors=(NotTenantAdmin,)),
    Endpoint("GET", "/support/settings", get_settings,
             "The desk's settings (the service's defaults while the tenant never set them)",
             response=s.DeskSettings, errors=(Forbidden,)),
    Endpoint("PUT", "/support/settings", put_settings,
             "Set the desk's settings: refuse new sessions rather than queue them while no agent could take them"
             " (admins)", body=s.DeskSettingsBody, response=s.DeskSettings, errors=(NotTenantAdmin,)),
]
