"""The desk as routing sees it: one consistent snapshot of a tenant's agents, teams and queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from projections.support_agents import desk_agents, list_teams
from projections.support_sessions import waiting_sessions
from service.domain.support.routing import AgentState, Waiting, could_serve, estimated_wait_minutes, queue_order


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
    customers: dict[str, str]


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
        customers={w["session_id"]: w["customer_id"] for w in waiting},
    )


def wait_estimates(desk: Desk, handle_seconds: float) -> dict[str, tuple[int, int]]:
    """(queue_position, estimated_wait_minutes) of every waiting session (see README: the wait estimate)."""
    order = queue_order(desk.queue)
    return {
        w.session_id: (n, estimated_wait_minutes(n, sum(1 for a in desk.agents if could_serve(a, w)), handle_seconds))
        for n, w in enumerate(order, start=1)
    }


