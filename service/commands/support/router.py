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
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from projections.members import access_of
from projections.support_agents import desk_agents
from schemas.errors import WrongExpectedSeq
from schemas.events import (
    Event,
    EventMetadata,
    MemberJoined,
    RecordedEvent,
    RoutingCandidate,
    SupportSessionAssigned,
)
from service.commands.support.desk import desk_stream, load_desk
from service.domain.support.routing import POLICIES, Policy, route

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.support")

ROUTER_ACTOR = "support-router"
# A router that keeps losing the race to other instances gives up after this many reads; the winners
# routed with a view that includes everything this one saw committed.
ROUTE_ATTEMPTS = 50


def policy_of(runtime: Runtime) -> Policy:
    """The configured routing policy."""
    return POLICIES.get(runtime.settings.support_policy, POLICIES["spare_capacity"])


async def connection_check(
    runtime: Runtime, tenant_id: str, agent_ids: list[str] | None = None
) -> Callable[[str], bool]:
    """Whether an agent (of `agent_ids`, default all the desk's) counts as connected: a live WebSocket
    anywhere, or one that closed less than `support_offline_after_seconds` ago — when the settings require a
    connection at all."""
    if not runtime.settings.support_require_connection:
        return lambda agent_id: True
    if agent_ids is None:
        agent_ids = [r["agent_id"] for r in await desk_agents(runtime.pool, tenant_id)]
    gone = await runtime.realtime.presence.offline_for(tenant_id, agent_ids)
    grace = runtime.settings.support_offline_after_seconds

    def connected(agent_id: str) -> bool:
        since = gone.get(agent_id)
        return since is not None and since < grace

    return connected


async def route_tenant(runtime: Runtime, tenant_id: str) -> list[RecordedEvent]:
    """Assign every waiting session of the tenant that an eligible agent can take now; the assignments written."""
    policy = policy_of(runtime)
    for _ in range(ROUTE_ATTEMPTS):
        desk = await load_desk(runtime.pool, tenant_id, connected=await connection_check(runtime, tenant_id))
        clock = max((a.last_assigned for a in desk.agents), default=0)
        assignments = route(desk.queue, desk.agents, policy, clock=clock + 1)
        if not assignments:
            return []
        now = datetime.now(UTC)
        arrivals = {w.session_id: w.arrival for w in desk.queue}
        events: list[Event] = [
            SupportSessionAssigned(
                session_id=a.session_id, agent_id=a.agent_id, policy_version=a.policy_version,
                candidates=[RoutingCandidate(c.agent_id, list(c.reasons), c.spare) for c in a.candidates],
                waited_seconds=max(0.0, (now - desk.queued_at[a.session_id]).total_seconds()),
                arrival=arrivals[a.session_id],
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


async def route_all(runtime: Runtime) -> int:
    """Route every tenant with waiting sessions (at start-up: a crash between a command's append and its
    routing leaves nothing waiting for the next change); how many tenants had a queue."""
    tenants = await runtime.pool.fetch(
        "SELECT DISTINCT tenant_id FROM support_sessions WHERE status IN ('queued', 'transferred')"
    )
    for row in tenants:
        await route_tenant(runtime, row["tenant_id"])
    return len(tenants)
