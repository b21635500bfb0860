"""Support session commands: start, message, hold, resume, transfer, escalate, end, rate — and the session view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from projections.members import list_members
from projections.messages import page_of_messages
from projections.support_agents import fetch_agent, fetch_team, team_for_level
from projections.support_sessions import fetch_session, recent_handle_seconds
from schemas import api
from schemas import support as s
from schemas.errors import (
    AgentNotFound,
    AlreadyRated,
    Forbidden,
    NoAgentsAvailable,
    SessionNotFound,
    TeamNotFound,
    ValidationError,
)
from schemas.events import (
    Event,
    MemberJoined,
    MemberRemoved,
    RoomCreated,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionHeld,
    SupportSessionRated,
    SupportSessionResumed,
    SupportSessionTransferred,
)
from service.commands.messages import send_message
from service.commands.metadata import metadata_for, retry_on_conflict
from service.commands.support.agents import desk_settings
from service.commands.support.desk import load_desk, wait_estimates
from service.commands.support.router import connection_check, join_room, route_tenant
from service.domain.authorization import authorize
from service.domain.support.routing import PRIORITY_RANK, Waiting, could_serve
from service.domain.support.sessions import SessionAction, transition
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

_context = msgspec.json.Decoder(dict[str, Any] | None)
WAITING = frozenset({"queued", "transferred"})
WEBSOCKET_PATH = "/ws"


NOBODY = "\x00"  # a customer filter no session matches


def customer_filter(principal: Principal, customer_id: str | None) -> str | None:
    """The customer a listing is limited to: a customer sees only its own (another's id matches NOBODY)."""
    if principal.role != "customer":
        return customer_id
    return principal.user_id if customer_id in (None, principal.user_id) else NOBODY


async def load_session(runtime: Runtime, principal: Principal, session_id: str) -> asyncpg.Record:
    """The session as the caller may see it: SESSION_NOT_FOUND for another tenant's, or another customer's."""
    row = await fetch_session(runtime.pool, principal.tenant_id, session_id)
    if row is None or (principal.role == "customer" and row["customer_id"] != principal.user_id):
        raise SessionNotFound("support session not found", field="session_id")
    return row


async def start_session(runtime: Runtime, principal: Principal, cmd: s.StartSession) -> asyncpg.Record:
    """Open the session's room and stream, then route the tenant's queue; the session as written."""
    authorize("support.session.start", principal.role)
    customer_id = await customer_of(runtime, principal, cmd.customer_id)
    if cmd.team_id is not None and await fetch_team(runtime.pool, principal.tenant_id, cmd.team_id) is None:
        raise TeamNotFound("no such team", field="team_id")
    if (await desk_settings(runtime, principal.tenant_id)).refuse_without_agents:
        await _refuse_without_agents(runtime, principal.tenant_id, cmd)
    session_id, room_id = new_id("sess"), new_id("room")
    meta = metadata_for(principal)
    room_events: list[Event] = [
        RoomCreated(room_id=room_id, room_type="support", created_by=principal.user_id, name=f"support {session_id}",
                    metadata={"session_id": session_id}),
        MemberJoined(user_id=customer_id, role="member", added_by=principal.user_id),
    ]
    await runtime.appender.append(room_id, room_events, tenant_id=principal.tenant_id, metadata=meta,
                                  expected_seq=0, create_stream=True)
    created = SupportSessionCreated(
        session_id=session_id, room_id=room_id, customer_id=customer_id, channel=cmd.channel, priority=cmd.priority,
        created_by=principal.user_id, initial_message=cmd.initial_message, context=cmd.context, skills=cmd.skills,
        language=cmd.language, team_id=cmd.team_id,
    )
    await runtime.appender.append(session_id, [created], tenant_id=principal.tenant_id, metadata=meta,
                                  expected_seq=0, create_stream=True)
    if cmd.initial_message is not None:
        customer = Principal(tenant_id=principal.tenant_id, user_id=customer_id, role="customer")
        await send_message(runtime, customer, room_id, api.SendMessage(content=cmd.initial_message), state={})
    await route_tenant(runtime, principal.tenant_id)
    row = await fetch_session(runtime.pool, principal.tenant_id, session_id)
    assert row is not None
    return row


async def customer_of(runtime: Runtime, principal: Principal, customer_id: str | None) -> str:
    """The customer a session or ticket is for: a customer itself, or the customer (role customer) staff name."""
    if principal.role == "customer":
        if customer_id not in (None, principal.user_id):
            raise Forbidden("customers start sessions for themselves", field="customer_id")
        return principal.user_id
    if customer_id is None:
        raise ValidationError("customer_id is required", field="customer_id")
    role = await runtime.pool.fetchval(
        "SELECT role FROM users WHERE tenant_id = $1 AND user_id = $2", principal.tenant_id, customer_id
    )
    if role != "customer":
        raise ValidationError("customer_id must name a user with the role customer", field="customer_id")
    return customer_id


async def _refuse_without_agents(runtime: Runtime, tenant_id: str, cmd: s.StartSession) -> None:
    desk = await load_desk(runtime.pool, tenant_id, connected=await connection_check(runtime, tenant_id))
    probe = Waiting("new", cmd.priority, 0, frozenset(cmd.skills), cmd.language, cmd.team_id)
    if not any(could_serve(a, probe) for a in desk.agents):
        raise NoAgentsAvailable("no agent who could take this session is available")


async def send_session_message(
    runtime: Runtime, principal: Principal, session_id: str, cmd: s.SessionMessage, *, state: dict[str, Any]
) -> s.SentMessage:
    """Post in the session's room through the ordinary chat path; desk staff join the room on their first write."""
    authorize("support.session.message", principal.role)
    row = await load_session(runtime, principal, session_id)
    transition(row["status"], "message")
    if principal.role != "customer":
        await join_room(runtime, principal.tenant_id, row["room_id"], principal.user_id)
    sent = await send_message(runtime, principal, row["room_id"], api.SendMessage(content=cmd.content),
                              state=state)
    return s.SentMessage(id=sent.result.message_id, seq=sent.result.seq, sender=_sender(row, principal.user_id),
                         timestamp=sent.result.created_at)


def _sender(row: asyncpg.Record, user_id: str) -> Any:
    return "customer" if user_id == row["customer_id"] else "agent"


async def change_session(
    runtime: Runtime, principal: Principal, session_id: str, action: SessionAction,
    decide: Callable[[asyncpg.Record, str], Event], *, resolution: str = "resolved", reroute: bool = False,
) -> asyncpg.Record:
    """Check the transition, append the event at the session's seq (again if another write got there first).

    `decide` gets the session and the status the transition leads to.
    """

    async def attempt() -> None:
        row = await load_session(runtime, principal, session_id)
        status = transition(row["status"], action, resolution=resolution)
        await runtime.appender.append(
            session_id, [decide(row, status)], tenant_id=principal.tenant_id, metadata=metadata_for(principal),
            expected_seq=row["session_seq"],
        )

    await retry_on_conflict(attempt)
    if reroute:
        await route_tenant(runtime, principal.tenant_id)
    return await load_session(runtime, principal, session_id)


async def hold(runtime: Runtime, principal: Principal, session_id: str) -> asyncpg.Record:
    authorize("support.session.work", principal.role)
    return await change_session(runtime, principal, session_id, "hold",
                                lambda *_: SupportSessionHeld(by=principal.user_id))


async def resume(runtime: Runtime, principal: Principal, session_id: str) -> asyncpg.Record:
    authorize("support.session.work", principal.role)
    return await change_session(runtime, principal, session_id, "resume",
                                lambda *_: SupportSessionResumed(by=principal.user_id))


async def transfer(runtime: Runtime, principal: Principal, session_id: str, cmd: s.Transfer) -> asyncpg.Record:
    """Send the session back to the queue, for one agent or one team; the internal notes stay internal."""
    authorize("support.session.work", principal.role)
    if cmd.target_type == "team" and await fetch_team(runtime.pool, principal.tenant_id, cmd.target_id) is None:
        raise TeamNotFound("no such team", field="target_id")
    if cmd.target_type == "agent" and await fetch_agent(runtime.pool, principal.tenant_id, cmd.target_id) is None:
        raise AgentNotFound("no such agent", field="target_id")
    return await change_session(
        runtime, principal, session_id, "transfer",
        lambda row, _: SupportSessionTransferred(target_type=cmd.target_type, target_id=cmd.target_id,
                                              by=principal.user_id, from_agent=row["agent_id"], reason=cmd.reason,
                                              notes=cmd.notes),
        reroute=True,
    )


def raised_priority(current: str, urgency: str) -> str:
    """The more urgent of the session's priority and the escalation's urgency."""
    return min(current, urgency, key=lambda p: PRIORITY_RANK.get(p, 2))


async def escalate(runtime: Runtime, principal: Principal, session_id: str, cmd: s.Escalate) -> asyncpg.Record:
    """Raise the priority and re-queue the session for the escalation team of its level (if one is set up)."""
    authorize("support.session.work", principal.role)
    team_id = await team_for_level(runtime.pool, principal.tenant_id, cmd.level)
    return await change_session(
        runtime, principal, session_id, "escalate",
        lambda row, _: SupportSessionEscalated(level=cmd.level, priority=raised_priority(row["priority"], cmd.urgency),
                                            by=principal.user_id, team_id=team_id, reason=cmd.reason,
                                            urgency=cmd.urgency),
        reroute=True,
    )


async def end(runtime: Runtime, principal: Principal, session_id: str, cmd: s.EndSession) -> asyncpg.Record:
    """End the session; its room closes with it (every member leaves, so the chat path takes no more writes)
    while the freed agent is routed the next session."""
    authorize("support.session.end", principal.role)
    row = await change_session(
        runtime, principal, session_id, "end",
        lambda _, status: SupportSessionEnded(resolution=cmd.resolution, status=status,  # type: ignore[arg-type]
                                              by=principal.user_id, resolution_notes=cmd.resolution_notes,
                                              tags=cmd.tags),
        resolution=cmd.resolution,
    )
    await asyncio.gather(route_tenant(runtime, principal.tenant_id), _close_room(runtime, principal, row["room_id"]))
    return await load_session(runtime, principal, session_id)


async def _close_room(runtime: Runtime, principal: Principal, room_id: str) -> None:
    members = await list_members(runtime.pool, principal.tenant_id, room_id)
    if members:
        await runtime.appender.append(
            room_id, [MemberRemoved(user_id=m["user_id"], removed_by=principal.user_id) for m in members],
            tenant_id=principal.tenant_id, metadata=metadata_for(principal),
        )


async def rate(runtime: Runtime, principal: Principal, session_id: str, cmd: s.Rating) -> asyncpg.Record:
    """The customer's one rating of an ended session."""
    authorize("support.session.rate", principal.role)

    def decide(row: asyncpg.Record, _: str) -> Event:
        if row["rating"] is not None:
            raise AlreadyRated("this session is rated already")
        return SupportSessionRated(score=cmd.score, by=principal.user_id, comment=cmd.comment)

    return await change_session(runtime, principal, session_id, "rate", decide)


async def queue_estimates(runtime: Runtime, tenant_id: str) -> dict[str, tuple[int, int]]:
    """(queue_position, estimated_wait_minutes) of each of the tenant's waiting sessions, from one desk snapshot."""
    desk = await load_desk(runtime.pool, tenant_id, connected=await connection_check(runtime, tenant_id))
    handle = await recent_handle_seconds(runtime.pool, tenant_id) or runtime.settings.support_default_handle_seconds
    return wait_estimates(desk, handle)


async def session_view(runtime: Runtime, principal: Principal, row: asyncpg.Record, *,
                       with_messages: bool = False,
                       estimates: dict[str, tuple[int, int]] | None = None) -> s.SessionDetail:
    """The seed's session shape as `principal` may see it (people by name and avatar only).

    `estimates` (from `queue_estimates`) saves reading the desk again for each of many sessions.
    """
    tenant_id = principal.tenant_id
    people = await _people(runtime, tenant_id, [row["customer_id"], *([row["agent_id"]] if row["agent_id"] else [])])
    position, wait = 0, 0
    if row["status"] in WAITING:
        if estimates is None:
            estimates = await queue_estimates(runtime, tenant_id)
        position, wait = estimates.get(row["session_id"], (0, 0))
    agent = people.get(row["agent_id"]) if row["agent_id"] and row["status"] not in WAITING else None
    end_at = row["ended_at"] or datetime.now(UTC)
    messages = await _messages(runtime, row) if with_messages else []
    return s.SessionDetail(
        session_id=row["session_id"], status=row["status"], channel=row["channel"], priority=row["priority"],
        room_id=row["room_id"], customer=people[row["customer_id"]],
        assigned_agent=agent, queue_position=position, estimated_wait_minutes=wait, websocket_url=WEBSOCKET_PATH,
        created_at=row["created_at"], context=_context.decode(row["context"]) if row["context"] else None,
        team_id=row["team_id"], resolution=row["resolution"], rating=row["rating"], ended_at=row["ended_at"],
        duration_seconds=int((end_at - row["created_at"]).total_seconds()), messages=messages,
    )


async def _people(runtime: Runtime, tenant_id: str, user_ids: list[str]) -> dict[str, s.Person]:
    rows = await runtime.pool.fetch(
        "SELECT user_id, display_name, avatar_url FROM users WHERE tenant_id = $1 AND user_id = ANY($2::text[])",
        tenant_id, user_ids,
    )
    found = {r["user_id"]: s.Person(r["user_id"], r["display_name"], r["avatar_url"]) for r in rows}
    return {u: found.get(u) or s.Person(u, u) for u in user_ids}


async def _messages(runtime: Runtime, row: asyncpg.Record) -> list[s.SessionMessageView]:
    rows = await page_of_messages(runtime.pool, row["room_id"], after_seq=0, before_seq=None, limit=200)
    return [
        s.SessionMessageView(id=m["message_id"], sender=_sender(row, m["sender_id"]), sender_id=m["sender_id"],
                             content=m["content"] or "", timestamp=m["created_at"])
        for m in rows if m["deleted_at"] is None
    ]
