"""Presence: choose a status, read colleagues' presence by id or by room, and who is online now."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import Forbidden, NotAMember, RoomNotFound, ValidationError
from schemas.presence import SetPresence, UserPresence
from service.commands.presence import MAX_USERS, online_users, room_presences, set_presence
from service.commands.rooms import require_member
from service.web.endpoints import Endpoint, TextQuery
from service.web.request import JSON, body_as, caller_may, runtime_of

# Percent-encoded, a character can take 12 bytes of the request head: this keeps any list under its limit.
USER_IDS = TextQuery("user_ids", f"comma-separated user ids (at most {MAX_USERS} and 2,500 characters); or room_id",
                     required=False, max_length=2500)
ROOM_ID = TextQuery("room_id", "a room the caller is a member of: its members' presence", required=False,
                    max_length=64)


async def put_presence(request: Request) -> Response:
    principal = await caller_may(request, "presence.set")
    cmd = await body_as(request, SetPresence)
    return JSON(await set_presence(runtime_of(request), principal, cmd))


async def get_presence(request: Request) -> Response:
    principal = await caller_may(request, "presence.read")
    runtime = runtime_of(request)
    user_ids, room_id = USER_IDS.read(request), ROOM_ID.read(request)
    if (user_ids is None) == (room_id is None):
        raise ValidationError("give exactly one of user_ids and room_id", field="user_ids")
    if room_id is not None:
        await require_member(request, principal, room_id)
        return JSON(await room_presences(runtime, principal.tenant_id, room_id))
    assert user_ids is not None
    ids = list(dict.fromkeys(u.strip() for u in user_ids.split(",") if u.strip()))
    if not ids or len(ids) > MAX_USERS or not all(api.is_user_id(u) for u in ids):
        raise ValidationError(f"user_ids must be 1 to {MAX_USERS} user ids, comma-separated", field="user_ids")
    return JSON(await runtime.realtime.presence.presences(principal.tenant_id, ids))


async def get_online(request: Request) -> Response:
    principal = await caller_may(request, "presence.read")
    return JSON(await online_users(runtime_of(request), principal.tenant_id))


ENDPOINTS = [
    Endpoint("PUT", "/presence", put_presence,
             "Choose a status: away, dnd or offline (invisible) win over the automatic one until online is chosen "
             "or clear_after_minutes runs out (text and emoji with it); returns the presence others now see",
             body=SetPresence, response=UserPresence, errors=(Forbidden,)),
    Endpoint("GET", "/presence", get_presence,
             "Presence of the named users of the tenant, or of a room's members (query user_ids or room_id)",
             response=list[UserPresence], query=(USER_IDS, ROOM_ID), errors=(Forbidden, NotAMember, RoomNotFound)),
    Endpoint("GET", "/presence/online", get_online,
             "The tenant's users active within the last 2 minutes (invisible ones are not listed)",
             response=list[UserPresence], errors=(Forbidden,)),
]
