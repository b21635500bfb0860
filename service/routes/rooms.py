"""Rooms and their members: create, list, read, rename, add and remove members."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventstore.append import AppendResult
from projections.blocks import blockers_among
from projections.guards import UniqueRoomKey
from projections.members import list_members
from projections.receipts import reading_positions
from projections.rooms import fetch_room, load_room_state, rooms_of_user
from schemas import api
from schemas.errors import Blocked, Forbidden, NotAMember, NotFound, NotRoomAdmin, RoomExists, RoomNotFound
from schemas.events import Event
from service.commands.metadata import metadata_for, retry_on_conflict
from service.commands.presence import member_statuses
from service.commands.rooms import actor_of, require_member
from service.domain.rooms import RoomState, decide_add_members, decide_create, decide_remove_member, decide_update
from service.identity.auth import Principal
from service.identity.ids import new_id
from service.web.endpoints import Endpoint, Link, Query
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

_metadata = msgspec.json.Decoder(dict[str, Any] | None)

LIMIT = Query("limit", "most rooms to return", minimum=1, maximum=100, default=50)
OFFSET = Query("offset", "rooms to skip", minimum=0, default=0)


def room_from_row(row: asyncpg.Record, reading: tuple[int, int] = (0, 0)) -> api.Room:
    """The API view of a rooms row, with the caller's (read_seq, unread_count)."""
    return api.Room(
        room_id=row["room_id"],
        type=row["type"],
        unique_key=row["unique_key"],
        name=row["name"],
        metadata=_metadata.decode(row["metadata"]) if row["metadata"] is not None else None,
        last_seq=row["last_seq"],
        created_at=row["created_at"],
        read_seq=reading[0],
        unread_count=reading[1],
    )


async def rooms_for_caller(request: Request, principal: Principal, rows: list[asyncpg.Record], *,
                           pool: asyncpg.Pool | None = None) -> list[api.Room]:
    """The rooms as the caller sees them: with how far they read each and what is unread (from `pool`, the
    one the rows came from; default the primary)."""
    reading = await reading_positions(pool or runtime_of(request).pool, principal.tenant_id, principal.user_id,
                                      [r["room_id"] for r in rows]) if rows else {}
    return [room_from_row(r, reading[r["room_id"]]) for r in rows]


async def create_room(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.CreateRoom)
    room_id = new_id("room")
    runtime = runtime_of(request)
    blocked_by = await blockers_among(runtime.pool, principal.tenant_id, principal.user_id, cmd.members)
    events, unique_key = decide_create(actor_of(principal), cmd, room_id, blocked_by=blocked_by)
    result = await runtime.appender.append(
        room_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
        expected_seq=0, create_stream=True,
        guard=UniqueRoomKey(principal.tenant_id, unique_key) if unique_key else None,
    )
    created = result.events[0]
    return JSON(
        api.Room(room_id=room_id, type=cmd.type, unique_key=unique_key, name=cmd.name, metadata=cmd.metadata,
                 last_seq=result.last_seq, created_at=created.created_at),
        status_code=201,
    )


async def list_rooms(request: Request) -> Response:
    principal = await caller_may(request, "rooms.list")
    pool = await runtime_of(request).reads.for_read()
    rows = await rooms_of_user(pool, principal.tenant_id, principal.user_id,
                               limit=LIMIT.require(request), offset=OFFSET.require(request))
    return JSON(await rooms_for_caller(request, principal, rows, pool=pool))


async def get_room(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await require_member(request, principal, room_id)
    row = await fetch_room(runtime_of(request).pool, principal.tenant_id, room_id)
    if row is None:
        raise RoomNotFound("room not found", field="room_id")
    [room] = await rooms_for_caller(request, principal, [row])
    return JSON(room)


async def update_room(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.UpdateRoom)
    await _change_membership_or_room(
        request, principal, room_id, lambda state: decide_update(state, actor_of(principal), cmd)
    )
    # Not get_room: a tenant admin may moderate a room without being in it.
    row = await fetch_room(runtime_of(request).pool, principal.tenant_id, room_id)
    if row is None:
        raise RoomNotFound("room not found", field="room_id")
    [room] = await rooms_for_caller(request, principal, [row])
    return JSON(room)


async def get_members(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await require_member(request, principal, room_id)
    return await _members_response(request, principal.tenant_id, room_id)


async def _members_response(request: Request, tenant_id: str, room_id: str) -> Response:
    runtime = runtime_of(request)
    rows = await list_members(runtime.pool, room_id)
    statuses = await member_statuses(runtime, tenant_id, [r["user_id"] for r in rows])
    return JSON([api.Member(user_id=r["user_id"], role=r["role"], joined_at=r["joined_at"],
                            status=statuses.get(r["user_id"], "offline")) for r in rows])


async def add_members(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.AddMembers)
    blocked_by = await blockers_among(runtime_of(request).pool, principal.tenant_id, principal.user_id, cmd.user_ids)
    await _change_membership_or_room(
        request, principal, room_id,
        lambda state: decide_add_members(state, actor_of(principal), cmd.user_ids, blocked_by=blocked_by),
    )
    return await _members_response(request, principal.tenant_id, room_id)


async def remove_member(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    user_id = request.path_params["user_id"]
    if not api.is_user_id(user_id):
        raise NotFound("no such member", field="user_id")
    await _change_membership_or_room(
        request, principal, room_id, lambda state: decide_remove_member(state, actor_of(principal), user_id)
    )
    return JSON(api.Success())


async def _change_membership_or_room(
    request: Request, principal: Principal, room_id: str, decide: Any
) -> AppendResult | None:
    """Read the room, decide, append at the seq that was read; re-run when another append got there first."""
    runtime = runtime_of(request)

    async def attempt() -> AppendResult | None:
        row = await load_room_state(runtime.pool, principal.tenant_id, room_id)
        if row is None:
            raise RoomNotFound("room not found", field="room_id")
        state = RoomState(room_type=row["type"], members=dict(zip(row["ids"], row["roles"], strict=True)))
        events: list[Event] = decide(state)
        if not events:
            return None
        return await runtime.appender.append(
            room_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
            expected_seq=row["last_seq"],
        )

    return await retry_on_conflict(attempt)


_ROOM_ERRORS = (RoomNotFound, NotAMember)
_ROOM = "/rooms/{room_id}"
# What a room's creator does next: read and change it, its members, its messages, its log, its receipts.
_ROOM_LINKS = tuple(Link(method, path) for method, path in (
    ("GET", _ROOM), ("PATCH", _ROOM), ("GET", f"{_ROOM}/members"), ("POST", f"{_ROOM}/members"),
    ("POST", f"{_ROOM}/messages"), ("GET", f"{_ROOM}/messages"), ("GET", f"{_ROOM}/events"),
    ("POST", f"{_ROOM}/read"), ("GET", f"{_ROOM}/receipts"),
))

ENDPOINTS = [
    Endpoint("POST", "/rooms", create_room, "Create a room; the caller becomes its admin",
             body=api.CreateRoomBody, response=api.Room, status=201, errors=(RoomExists, Blocked, Forbidden),
             links=_ROOM_LINKS),
    Endpoint("GET", "/rooms", list_rooms, "The caller's rooms with their last_seq",
             response=list[api.Room], query=(LIMIT, OFFSET), errors=(Forbidden,)),
    Endpoint("GET", "/rooms/{room_id}", get_room, "One room", response=api.Room, errors=_ROOM_ERRORS),
    Endpoint("PATCH", "/rooms/{room_id}", update_room, "Rename a room or change its metadata (room admins)",
             body=api.UpdateRoom, response=api.Room, errors=(*_ROOM_ERRORS, NotRoomAdmin)),
    Endpoint("GET", "/rooms/{room_id}/members", get_members, "Active members of a room",
             response=list[api.Member], errors=_ROOM_ERRORS),
    Endpoint("POST", "/rooms/{room_id}/members", add_members, "Add members (room admins); returns all members",
             body=api.AddMembers, response=list[api.Member], errors=(*_ROOM_ERRORS, NotRoomAdmin, Forbidden, Blocked)),
    Endpoint("DELETE", "/rooms/{room_id}/members/{user_id}", remove_member,
             "Remove a member (room admins) or leave (yourself)", response=api.Success,
             errors=(*_ROOM_ERRORS, NotRoomAdmin, Forbidden, NotFound)),
]
