"""Presence commands: a user chooses a status (an event in their own stream), and reads of who is where."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from projections.members import list_members
from projections.streams import user_stream
from schemas.events import PresenceStatus, PresenceStatusSet
from schemas.presence import SetPresence, UserPresence
from service.commands.metadata import metadata_for
from service.domain.presence import expiry, is_active
from service.identity.auth import Principal
from service.runtime import Runtime

# GET /presence?user_ids= names at most this many users; a room's members are read the same way.
MAX_USERS = 100


async def set_presence(runtime: Runtime, principal: Principal, cmd: SetPresence) -> UserPresence:
    """Record the caller's chosen status and tell those who watch them; their presence as others now see it."""
    presence = runtime.realtime.presence
    lapses = expiry(presence.clock(), cmd.clear_after_minutes)
    event = PresenceStatusSet(
        status=cmd.status, status_text=cmd.status_text, status_emoji=cmd.status_emoji,
        expires_at=None if lapses is None else datetime.fromtimestamp(lapses, UTC),
    )
    # Each choice replaces the last whatever came between: no expected seq, the stream's order decides.
    await runtime.appender.append(user_stream(principal.tenant_id, principal.user_id), [event],
                                  tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                                  create_stream=True)
    presence.lapses(principal.tenant_id, principal.user_id, lapses)
    return await presence.tell(principal.tenant_id, principal.user_id)


async def room_presences(runtime: Runtime, tenant_id: str, room_id: str) -> list[UserPresence]:
    """The presence of a room's active members, in the order they joined."""
    members = [r["user_id"] for r in await list_members(runtime.pool, tenant_id, room_id)]
    return await runtime.realtime.presence.presences(tenant_id, members)


async def member_statuses(runtime: Runtime, tenant_id: str, user_ids: Sequence[str]) -> dict[str, PresenceStatus]:
    """Each user's presence status as others see it (what `GET /rooms/{id}/members` shows)."""
    return {p.user_id: p.status for p in await runtime.realtime.presence.presences(tenant_id, user_ids)}


async def online_users(runtime: Runtime, tenant_id: str) -> list[UserPresence]:
    """The tenant's users active within the last 2 minutes (invisible ones excepted), by user id."""
    presence = runtime.realtime.presence
    now = presence.clock()
    candidates = sorted(user_id for user_id, live in await presence.active(tenant_id) if is_active(live, None, now))
    # Active users are never automatically offline: "offline" here is an invisible one.
    return [p for p in await presence.presences(tenant_id, candidates) if p.status != "offline"]
