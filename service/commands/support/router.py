"""Routing a tenant's queue the moment capacity appears, safely across service instances.

Capacity safety: every event that grants or takes capacity — an agent's profile and status, a team,
and every assignment — is in the tenant's desk stream (`support:<tenant>`). The router reads the desk
(agents, their live loads, the queue) in one snapshot together with the desk stream's `last_seq`,
decides with the pure policy, and appends the assignments at that seq. If anything else reached the
desk in between — another instance's assignments, a capacity change — the append is refused
(SEQ_CONFLICT) and the router reads again. Ends and transfers (in the sessions' own streams) only free
capacity, so a snapshot that missed one is never unsafe, and the command that freed it routes after
its own append. So no agent is ever given more than `max_sessions`, however many instances route.

Routing runs after every command that can free capacity or add demand (a new session, an end, a
transfer, an escalation, a status or profile change), on the instance that served it: no polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
import structlog

from projections.members import access_of
from projections.support_agents import desk_agents, list_teams
from projections.support_sessions import waiting_sessions
from schemas.errors import WrongExpectedSeq
from schemas.events import (
    Event,
    EventMetadata,
    MemberJoined,
    RecordedEvent,
    RoutingCandidate,
    SupportSessionAssigned,
)
from service.domain.support.routing import POLICIES, AgentState, Policy, Waiting, route

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.support")

ROUTER_ACTOR = "support-router"
# A router that keeps losing the race to other instances gives up after this many reads; the winners
# routed with a view that includes everything this one saw committed.
ROUTE_ATTEMPTS = 50


def desk_stream(tenant_id: str) -> str:
    """The tenant's desk stream: agents, teams and assignments."""
    return f"support:{tenant_id}"


@dataclass(frozen=True)
class Desk:
    """A consistent snapshot of a tenant's desk, and the desk stream's seq it was read at."""

    last_seq: int
    agents: list[AgentState]
    queue: list[Waiting]
    queued_at: dict[str, datetime]
    rooms: dict[str, str]


async def load_desk(
    pool: asyncpg.Pool, tenant_id: str, *, connected: Callable[[str], bool] = lambda agent_id: True
) -> Desk:
    """The desk as of one snapshot: agents with live loads, team memberships folded in, and the queue."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        last_seq = await conn.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", desk_stream(tenant_id))
        agent_rows = await desk_agents(conn, tenant_id)
        teams = await list_teams(conn, tenant_id)
        waiting = await waiting_sessions(conn, tenant_id)
    member_of: dict[str, set[str]] = {}
    required = {t["team_id"]: frozenset(t["required_skills"]) for t in teams}
    for t in teams:
        for m in t["members"]:
            member_of.setdefault(m, set()).add(t["team_id"])
    agents = [
        AgentState(
            agent_id=r["agent_id"], status=r["status"], max_sessions=r["max_sessions"], active=r["active"],
            skills=frozenset(r["skills"]), languages=frozenset(r["languages"]),
            teams=frozenset(r["teams"]) | frozenset(member_of.get(r["agent_id"], ())),
            connected=connected(r["agent_id"]), last_assigned=r["last_assigned"],
        )
        for r in agent_rows
    ]
    queue = [
        Waiting(
            session_id=w["session_id"], priority=w["priority"], arrival=w["arrival"],
            skills=frozenset(w["skills"]) | required.get(w["team_id"], frozenset()), language=w["language"],
            team_id=w["team_id"], agent_id=w["target_agent"],
        )
        for w in waiting
    ]
    return Desk(
        last_seq=last_seq or 0, agents=agents, queue=queue,
        queued_at={w["session_id"]: w["queued_at"] for w in waiting},
        rooms={w["session_id"]: w["room_id"] for w in waiting},
    )


def policy_of(runtime: Runtime) -> Policy:
    """The configured routing policy."""
    return POLICIES.get(runtime.settings.support_policy, POLICIES["spare_capacity"])


def connection_check(runtime: Runtime, tenant_id: str) -> Callable[[str], bool]:
    """Whether an agent counts as connected: a live WebSocket anywhere, when the settings require one."""
    if not runtime.settings.support_require_connection:
        return lambda agent_id: True
    presence = runtime.realtime.presence
    return lambda agent_id: presence.is_online(tenant_id, agent_id)


async def route_tenant(runtime: Runtime, tenant_id: str) -> list[RecordedEvent]:
    """Assign every waiting session of the tenant that an eligible agent can take now; the assignments written."""
    policy = policy_of(runtime)
    for _ in range(ROUTE_ATTEMPTS):
        desk = await load_desk(runtime.pool, tenant_id, connected=connection_check(runtime, tenant_id))
        clock = max((a.last_assigned for a in desk.agents), default=0)
        assignments = route(desk.queue, desk.agents, policy, clock=clock + 1)
        if not assignments:
            return []
        now = datetime.now(UTC)
        events: list[Event] = [
            SupportSessionAssigned(
                session_id=a.session_id, agent_id=a.agent_id, policy_version=a.policy_version,
                candidates=[RoutingCandidate(c.agent_id, list(c.reasons), c.spare) for c in a.candidates],
                waited_seconds=max(0.0, (now - desk.queued_at[a.session_id]).total_seconds()),
            )
            for a in assignments
        ]
        started = time.perf_counter()
        try:
            result = await runtime.appender.append(
                desk_stream(tenant_id), events, tenant_id=tenant_id,
                metadata=EventMetadata(tenant_id=tenant_id, actor=ROUTER_ACTOR),
                expected_seq=desk.last_seq, create_stream=desk.last_seq == 0,
            )
        except WrongExpectedSeq:
            continue  # the desk moved on: read it again
        log.debug("sessions routed", tenant_id=tenant_id, assigned=len(events),
                  append_ms=round((time.perf_counter() - started) * 1000, 2))
        for a in assignments:
            await join_room(runtime, tenant_id, desk.rooms[a.session_id], a.agent_id)
        return result.events
    log.warning("routing gave up after losing every race", tenant_id=tenant_id, attempts=ROUTE_ATTEMPTS)
    return []


async def join_room(runtime: Runtime, tenant_id: str, room_id: str, user_id: str) -> None:
    """Make the assigned agent a member of the session's room, so its messages reach them on the chat path."""
    exists, role = await access_of(runtime.pool, tenant_id, room_id, user_id)
    if not exists or role is not None:
        return
    await runtime.appender.append(
        room_id, [MemberJoined(user_id=user_id, role="member", added_by=ROUTER_ACTOR)], tenant_id=tenant_id,
        metadata=EventMetadata(tenant_id=tenant_id, actor=ROUTER_ACTOR),
    )
