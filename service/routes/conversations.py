"""The caller's own state of their conversations: mute, archive, and what is unread across them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.inbox import inbox_room, mentions_of, unread_of_user
from projections.messages import reaction_counts
from schemas import api
from schemas.errors import Forbidden, NotAMember, NotRoomAdmin, RoomNotFound, RoomWasDeleted, ValidationError
from service.commands.conversations import clear_history, delete_for_everyone, set_archived, set_muted
from service.web.endpoints import ChoiceQuery, Endpoint, Query
from service.web.request import JSON, caller, caller_may, runtime_of
from service.web.views import message_view

# GET /unread answers for at most this many rooms (the most recently active).
MAX_UNREAD_ROOMS = 5000
SCOPE = ChoiceQuery("scope", "for_me: delete the room's history for yourself; for_everyone: end the room for all",
                    ("for_me", "for_everyone"))
MENTIONS_LIMIT = Query("limit", "most mentions to return", minimum=1, maximum=100, default=20)


async def _state(request: Request, room_id: str) -> Response:
    principal = await caller(request)
    row = await inbox_room(runtime_of(request).pool, principal.tenant_id, principal.user_id, room_id)
    if row is None:  # left the room in between: answer as if asked after
        raise NotAMember("you are not a member of this room")
    return JSON(api.UserRoomState(room_id=room_id, is_muted=row["is_muted"], is_archived=row["is_archived"]))


async def mute(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    await set_muted(runtime_of(request), await caller(request), room_id, mute=True)
    return await _state(request, room_id)


async def unmute(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    await set_muted(runtime_of(request), await caller(request), room_id, mute=False)
    return await _state(request, room_id)


async def archive(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    await set_archived(runtime_of(request), await caller(request), room_id, archive=True)
    return await _state(request, room_id)


async def unarchive(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    await set_archived(runtime_of(request), await caller(request), room_id, archive=False)
    return await _state(request, room_id)


async def delete_room(request: Request) -> Response:
    room_id = request.path_params["room_id"]
    scope = SCOPE.read(request)
    if scope is None:
        raise ValidationError("scope is required: for_me or for_everyone", field="scope")
    if scope == "for_everyone":
        principal = await caller(request)
        await delete_for_everyone(runtime_of(request), principal, room_id)
        # A tenant admin may delete a room they are not in: they have no state of it.
        row = await inbox_room(runtime_of(request).pool, principal.tenant_id, principal.user_id, room_id)
        return JSON(api.UserRoomState(room_id=room_id, is_muted=bool(row and row["is_muted"]),
                                      is_archived=bool(row and row["is_archived"])))
    await clear_history(runtime_of(request), await caller(request), room_id)
    return await _state(request, room_id)


async def unread(request: Request) -> Response:
    principal = await caller_may(request, "rooms.list")
    rows = await unread_of_user(runtime_of(request).pool, principal.tenant_id, principal.user_id,
                                limit=MAX_UNREAD_ROOMS)
    rooms = [api.UnreadRoom(room_id=r["room_id"], unread_count=r["unread_count"], mention_count=r["mention_count"],
                            last_seq=r["last_seq"], read_seq=r["read_seq"], is_muted=r["is_muted"]) for r in rows]
    audible = [r for r in rooms if not r.is_muted]
    totals = api.UnreadTotals(unread_count=sum(r.unread_count for r in audible),
                              mention_count=sum(r.mention_count for r in rooms),
                              rooms_with_unread=sum(r.unread_count > 0 for r in audible))
    return JSON(api.Unread(rooms=rooms, totals=totals))


async def mentions(request: Request) -> Response:
    principal = await caller_may(request, "rooms.list")
    limit = MENTIONS_LIMIT.require(request)
    pool = runtime_of(request).pool
    rows = await mentions_of(pool, principal.tenant_id, principal.user_id, limit=limit + 1)
    page = rows[:limit]
    counts = await reaction_counts(pool, [r["message_id"] for r in page], principal.user_id) if page else {}
    return JSON([api.Mention(room_id=r["room_id"], message=message_view(r, counts.get(r["message_id"], [])))
                 for r in page], headers={"X-Has-More": "true" if len(rows) > limit else "false"})


_ERRORS = (RoomNotFound, NotAMember, RoomWasDeleted)
ENDPOINTS = [
    Endpoint("POST", "/rooms/{room_id}/mute", mute, "Mute a room for yourself: no offline webhooks but mentions",
             response=api.UserRoomState, errors=_ERRORS),
    Endpoint("DELETE", "/rooms/{room_id}/mute", unmute, "Unmute a room for yourself",
             response=api.UserRoomState, errors=_ERRORS),
    Endpoint("POST", "/rooms/{room_id}/archive", archive,
             "Archive a room for yourself: hidden from the default inbox until a new message (unless muted)",
             response=api.UserRoomState, errors=_ERRORS),
    Endpoint("DELETE", "/rooms/{room_id}/archive", unarchive, "Un-archive a room for yourself",
             response=api.UserRoomState, errors=_ERRORS),
    Endpoint("DELETE", "/rooms/{room_id}", delete_room,
             "scope=for_me: delete the room's history for yourself up to its last_seq; hidden until a new message. "
             "scope=for_everyone (room admins; either member of a DM): end the room for all, content redacted",
             response=api.UserRoomState, query=(SCOPE,), errors=(*_ERRORS, NotRoomAdmin)),
    Endpoint("GET", "/unread", unread, "Unread and mention counts of each of your rooms, with totals",
             response=api.Unread, errors=(Forbidden,)),
    Endpoint("GET", "/mentions", mentions,
             "Messages of others that mention you (by id, @room or @here), newest first (X-Has-More header)",
             response=list[api.Mention], query=(MENTIONS_LIMIT,), errors=(Forbidden,)),
]
