"""Rooms and their members: create, list, read, rename, add and remove members."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventstore.append import AppendResult
from projections.blocks import blockers_among
from projections.guards import UniqueRoomKey
from projections.inbox import PREVIEW_CHARS, InboxFilter, inbox_page, inbox_room
from projections.members import list_members
from projections.rooms import fetch_room, load_room_state, public_channels
from schemas import api
from schemas.errors import (
    Blocked,
    Forbidden,
    NotAMember,
    NotFound,
    NotRoomAdmin,
    RoomExists,
    RoomNotFound,
    RoomWasDeleted,
    ValidationError,
)
from schemas.events import Event, MemberJoined, RoomSettings
from service.commands.metadata import metadata_for, retry_on_conflict
from service.commands.presence import member_statuses
from service.commands.rooms import actor_of, require_member
from service.domain.rooms import (
    RoomState,
    decide_add_members,
    decide_create,
    decide_join,
    decide_remove_member,
    decide_update,
)
from service.identity.auth import Principal
from service.identity.ids import new_id
from service.web.endpoints import ChoiceQuery, Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

_metadata = msgspec.json.Decoder(dict[str, Any] | None)
_cursor = msgspec.json.Decoder(tuple[datetime, str])
_encoder = msgspec.json.Encoder()

LIMIT = Query("limit", "most rooms to return", minimum=1, maximum=100, default=50)
OFFSET = Query("offset", "rooms to skip", minimum=0, default=0)
CURSOR = TextQuery("cursor", "the X-Next-Cursor of the previous page", max_length=300, required=False)
TYPE = ChoiceQuery("type", "only rooms of this type", ("dm", "group", "channel", "support"))
ARCHIVED = ChoiceQuery("archived", "archived rooms instead of the others (default false)", ("true", "false"), "false")
DISCOVER = ChoiceQuery("discover", "public: the tenant's public channels, joined or not (limit/offset page)",
                       ("public",))
MUTED = ChoiceQuery("muted", "only muted (true) or unmuted (false) rooms", ("true", "false"))


def _last_message(row: asyncpg.Record) -> api.LastMessage | None:
    if row["last_message_id"] is None:
        return None
    return api.LastMessage(message_id=row["last_message_id"], seq=row["last_message_seq"],
                           sender_id=row["last_message_sender"], preview=row["last_message_preview"],
                           deleted=row["last_message_deleted"])


def public_room_from_row(row: asyncpg.Record) -> api.Room:
    """The API view of a `public_channels` row: the room, without anyone's personal state of it."""
    return api.Room(
        room_id=row["room_id"], type=row["type"], unique_key=row["unique_key"], name=row["name"],
        metadata=_metadata.decode(row["metadata"]) if row["metadata"] is not None else None,
        last_seq=row["last_seq"], created_at=row["created_at"], created_by=row["created_by"],
        display_name=row["display_name"], description=row["description"], visibility=row["visibility"],
        settings=RoomSettings(who_can_post=row["who_can_post"], message_retention_days=row["retention_days"]),
        member_count=row["member_count"], last_message_at=row["last_message_at"], last_message=_last_message(row),
    )


def room_from_row(row: asyncpg.Record) -> api.Room:
    """The API view of an inbox row (projections.inbox) as its user sees it."""
    last = _last_message(row)
    return api.Room(
        room_id=row["room_id"],
        type=row["type"],
        unique_key=row["unique_key"],
        name=row["name"],
        metadata=_metadata.decode(row["metadata"]) if row["metadata"] is not None else None,
        last_seq=row["last_seq"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        display_name=row["display_name"],
        description=row["description"],
        visibility=row["visibility"],
        settings=RoomSettings(who_can_post=row["who_can_post"], message_retention_days=row["retention_days"]),
        member_count=row["member_count"],
        last_message_at=row["last_message_at"],
        last_message=last,
        read_seq=row["read_seq"],
        unread_count=row["unread_count"],
        mention_count=row["mention_count"],
        is_muted=row["is_muted"],
        is_archived=row["is_archived"],
        deleted_at=row["deleted_at"],
    )


def encode_cursor(row: asyncpg.Record) -> str:
    """An opaque cursor after this inbox row: its last activity and room id."""
    return base64.urlsafe_b64encode(_encoder.encode((row["activity_at"], row["room_id"]))).decode()


def decode_cursor(raw: str) -> tuple[datetime, str]:
    """The (activity, room id) a cursor stands for; a 400 naming `cursor` when it is not one of ours."""
    try:
        return _cursor.decode(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, msgspec.DecodeError):
        raise ValidationError("cursor is not one this service handed out", field="cursor") from None


async def room_for_caller(request: Request, principal: Principal, room_id: str) -> api.Room:
    """A room as the caller sees it; a tenant admin outside the room gets it without the personal fields."""
    pool = runtime_of(request).pool
    row = await inbox_room(pool, principal.tenant_id, principal.user_id, room_id, now=runtime_of(request).wall_clock())
    if row is not None:
        return room_from_row(row)
    plain = await fetch_room(pool, principal.tenant_id, room_id)
    if plain is None:
        raise RoomNotFound("room not found", field="room_id")
    return api.Room(
        room_id=plain["room_id"], type=plain["type"], unique_key=plain["unique_key"], name=plain["name"],
        metadata=_metadata.decode(plain["metadata"]) if plain["metadata"] is not None else None,
        last_seq=plain["last_seq"], created_at=plain["created_at"], created_by=plain["created_by"],
        display_name=plain["display_name"], description=plain["description"], visibility=plain["visibility"],
        settings=RoomSettings(who_can_post=plain["who_can_post"], message_retention_days=plain["retention_days"]),
        deleted_at=plain["deleted_at"],
    )


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
                 last_seq=result.last_seq, created_at=created.created_at, created_by=principal.user_id,
                 display_name=cmd.display_name, description=cmd.description,
                 visibility=(cmd.visibility or "private") if cmd.type == "channel" else None,
                 settings=cmd.settings or RoomSettings(),
                 member_count=sum(isinstance(e, MemberJoined) for e in events)),
        status_code=201,
    )


async def list_rooms(request: Request) -> Response:
    principal = await caller_may(request, "rooms.list")
    raw_cursor = CURSOR.read(request)
    limit = LIMIT.require(request)
    if DISCOVER.read(request) == "public":
        rows = await public_channels(runtime_of(request).pool, principal.tenant_id, limit=limit + 1,
                                     offset=OFFSET.require(request), preview_chars=PREVIEW_CHARS)
        return JSON([public_room_from_row(r) for r in rows[:limit]],
                    headers={"X-Has-More": "true" if len(rows) > limit else "false"})
    pool = await runtime_of(request).reads.for_read()
    where = InboxFilter(type=TYPE.read(request), archived=ARCHIVED.flag(request), muted=MUTED.flag(request))
    rows = await inbox_page(pool, principal.tenant_id, principal.user_id, where=where,
                            after=decode_cursor(raw_cursor) if raw_cursor else None, limit=limit + 1,
                            offset=OFFSET.require(request), now=runtime_of(request).wall_clock())
    page = rows[:limit]
    headers = {"X-Has-More": "true" if len(rows) > limit else "false"}
    if len(rows) > limit:
        headers["X-Next-Cursor"] = encode_cursor(page[-1])
    return JSON([room_from_row(r) for r in page], headers=headers)


async def get_room(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await require_member(request, principal, room_id)
    return JSON(await room_for_caller(request, principal, room_id))


async def update_room(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.UpdateRoom)
    await _change_membership_or_room(
        request, principal, room_id, lambda state: decide_update(state, actor_of(principal), cmd)
    )
    # A tenant admin may moderate a room without being in it.
    return JSON(await room_for_caller(request, principal, room_id))


async def get_members(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await require_member(request, principal, room_id)
    return await _members_response(request, principal, room_id)


async def _members_response(request: Request, principal: Principal, room_id: str) -> Response:
    runtime = runtime_of(request)
    rows = await list_members(runtime.pool, principal.tenant_id, room_id)
    statuses = await member_statuses(runtime, principal.tenant_id, [r["user_id"] for r in rows])
    return JSON([
        api.Member(user_id=r["user_id"], role=r["role"], joined_at=r["joined_at"], display_name=r["display_name"],
                   avatar_url=r["avatar_url"], status=statuses.get(r["user_id"], "offline"))
        for r in rows
    ])


async def add_members(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.AddMembers)
    blocked_by = await blockers_among(runtime_of(request).pool, principal.tenant_id, principal.user_id, cmd.user_ids)
    await _change_membership_or_room(
        request, principal, room_id,
        lambda state: decide_add_members(state, actor_of(principal), cmd.user_ids, blocked_by=blocked_by),
    )
    return await _members_response(request, principal, room_id)


async def join_room(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await _change_membership_or_room(request, principal, room_id,
                                     lambda state: decide_join(state, actor_of(principal)))
    return JSON(await room_for_caller(request, principal, room_id))


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
        state = RoomState(room_type=row["type"], members=dict(zip(row["ids"], row["roles"], strict=True)),
                          visibility=row["visibility"], deleted=row["deleted"])
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
    Endpoint("GET", "/rooms", list_rooms,
             "The caller's inbox: rooms by last activity, newest first (X-Has-More, X-Next-Cursor headers page on)",
             response=list[api.Room], query=(LIMIT, OFFSET, CURSOR, TYPE, ARCHIVED, MUTED, DISCOVER),
             errors=(Forbidden,)),
    Endpoint("POST", "/rooms/{room_id}/join", join_room, "Join a public channel (again: no change)",
             response=api.Room, errors=(RoomNotFound, Forbidden)),
    Endpoint("GET", "/rooms/{room_id}", get_room, "One room", response=api.Room, errors=_ROOM_ERRORS),
    Endpoint("PATCH", "/rooms/{room_id}", update_room, "Rename a room or change its metadata (room admins)",
             body=api.UpdateRoom, response=api.Room, errors=(*_ROOM_ERRORS, NotRoomAdmin, RoomWasDeleted)),
    Endpoint("GET", "/rooms/{room_id}/members", get_members, "Active members of a room",
             response=list[api.Member], errors=_ROOM_ERRORS),
    Endpoint("POST", "/rooms/{room_id}/members", add_members, "Add members (room admins); returns all members",
             body=api.AddMembers, response=list[api.Member],
             errors=(*_ROOM_ERRORS, NotRoomAdmin, Forbidden, Blocked, RoomWasDeleted)),
    Endpoint("DELETE", "/rooms/{room_id}/members/{user_id}", remove_member,
             "Remove a member (room admins) or leave (yourself)", response=api.Success,
             errors=(*_ROOM_ERRORS, NotRoomAdmin, Forbidden, NotFound, RoomWasDeleted)),
]
