"""The desk's WebSocket frames, computed for the users connected to this instance.

From the desk and session events the hub receives: `support.session.assigned` to the agent who got a
session; `support.session.queued` / `support.session.transferred` to the desk's agents when a session
starts waiting (new or escalated) or is transferred; and `support.queue` to each connected customer
whose session waits, with its queue position and wait estimate, whenever the queue changes (and once
with status active when its session is assigned).
"""

from __future__ import annotations

import asyncpg

from projections.support_agents import desk_agents
from projections.support_sessions import fetch_session, recent_handle_seconds
from schemas.events import (
    RecordedEvent,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionTransferred,
)
from schemas.support import SupportFrame
from service.commands.support.desk import load_desk, wait_estimates

_QUEUE_CHANGES = (SupportSessionCreated, SupportSessionAssigned, SupportSessionTransferred, SupportSessionEscalated,
                  SupportSessionEnded)

UserFrame = tuple[str, SupportFrame]


async def support_frames(
    pool: asyncpg.Pool, event: RecordedEvent, local_users: set[str], *, default_handle_seconds: float
) -> list[UserFrame]:
    """The frames `event` calls for, for those of `local_users` they concern."""
    ev, tenant_id = event.event, event.tenant_id
    frames: list[UserFrame] = []
    if isinstance(ev, SupportSessionAssigned):
        row = await fetch_session(pool, tenant_id, ev.session_id)
        if row is None:
            return []
        frames.append((ev.agent_id, SupportFrame(type="support.session.assigned", session_id=ev.session_id,
                                                 status="active", room_id=row["room_id"], agent_id=ev.agent_id)))
        frames.append((row["customer_id"], SupportFrame(type="support.queue", session_id=ev.session_id,
                                                        status="active", room_id=row["room_id"],
                                                        agent_id=ev.agent_id, queue_position=0,
                                                        estimated_wait_minutes=0)))
    elif isinstance(ev, SupportSessionCreated | SupportSessionTransferred | SupportSessionEscalated):
        if isinstance(ev, SupportSessionTransferred):
            frame = SupportFrame(type="support.session.transferred", session_id=event.stream_id, status="transferred")
        else:
            frame = SupportFrame(type="support.session.queued", session_id=event.stream_id,
                                 status="queued" if isinstance(ev, SupportSessionCreated) else "transferred")
        agents = {r["agent_id"] for r in await desk_agents(pool, tenant_id)} & local_users
        frames += [(a, frame) for a in sorted(agents)]
    if isinstance(ev, _QUEUE_CHANGES):
        frames += await _queue_frames(pool, tenant_id, local_users, default_handle_seconds)
    return [(user, frame) for user, frame in frames if user in local_users]


async def _queue_frames(
    pool: asyncpg.Pool, tenant_id: str, local_users: set[str], default_handle_seconds: float
) -> list[UserFrame]:
    desk = await load_desk(pool, tenant_id)
    waiting_here = {s: c for s, c in desk.customers.items() if c in local_users}
    if not waiting_here:
        return []
    handle = await recent_handle_seconds(pool, tenant_id) or default_handle_seconds
    estimates = wait_estimates(desk, handle)
    return [
        (customer, SupportFrame(type="support.queue", session_id=sid, status="queued", room_id=desk.rooms[sid],
                                queue_position=estimates[sid][0], estimated_wait_minutes=estimates[sid][1]))
        for sid, customer in sorted(waiting_here.items())
    ]
