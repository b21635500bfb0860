"""Room rules: creating rooms (one DM per pair), renaming, and who may join or leave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from msgspec import UNSET

from schemas.api import CreateRoom, UpdateRoom
from schemas.errors import Forbidden, NotFound, NotRoomAdmin, ValidationError
from schemas.events import Event, MemberJoined, MemberRemoved, RoomCreated, RoomUpdated


@dataclass(frozen=True)
class RoomState:
    """What membership rules need to know about a room: its type and its active members' roles."""

    room_type: Literal["dm", "group", "channel"]
    members: dict[str, Literal["admin", "member"]]


def dm_key(a: str, b: str) -> str:
    """The unique key of the DM between two users, the same whoever creates it."""
    first, second = sorted((a, b))
    return f"dm:{quote(first, safe='')}:{quote(second, safe='')}"


def decide_create(actor: str, cmd: CreateRoom, room_id: str) -> tuple[list[Event], str | None]:
    """Events that create a room with the actor as admin, and the room's unique key (DMs only)."""
    others = [u for u in dict.fromkeys(cmd.members) if u != actor]
    unique_key = None
    if cmd.type == "dm":
        if len(others) != 1:
            raise ValidationError("a dm has exactly two members: the caller and one other user", field="members")
        unique_key = dm_key(actor, others[0])
    events: list[Event] = [
        RoomCreated(room_id=room_id, room_type=cmd.type, created_by=actor, unique_key=unique_key,
                    name=cmd.name, metadata=cmd.metadata),
        MemberJoined(user_id=actor, role="admin", added_by=actor),
    ]
    events += [MemberJoined(user_id=u, role="member", added_by=actor) for u in others]
    return events, unique_key


def decide_update(state: RoomState, actor: str, cmd: UpdateRoom) -> list[Event]:
    """A rename / metadata change by a room admin."""
    _require_admin(state, actor)
    if cmd.name is UNSET and cmd.metadata is UNSET:
        raise ValidationError("nothing to update: give name and/or metadata")
    return [
        RoomUpdated(
            updated_by=actor,
            name=None if cmd.name is UNSET else cmd.name,
            metadata=None if cmd.metadata is UNSET else cmd.metadata,
            set_name=cmd.name is not UNSET,
            set_metadata=cmd.metadata is not UNSET,
        )
    ]


def decide_add_members(state: RoomState, actor: str, user_ids: list[str]) -> list[Event]:
    """Room admins add users; users already in the room are skipped, so adding is idempotent."""
    _require_admin(state, actor)
    if state.room_type == "dm":
        raise Forbidden("the members of a dm are fixed")
    return [
        MemberJoined(user_id=u, role="member", added_by=actor)
        for u in dict.fromkeys(user_ids)
        if u not in state.members
    ]


def decide_remove_member(state: RoomState, actor: str, user_id: str) -> list[Event]:
    """Members may leave; room admins may remove anyone."""
    if actor not in state.members:
        raise Forbidden("you are not a member of this room")
    if state.room_type == "dm":
        raise Forbidden("the members of a dm are fixed")
    if user_id not in state.members:
        raise NotFound("no such member in this room", field="user_id")
    if user_id != actor:
        _require_admin(state, actor)
    return [MemberRemoved(user_id=user_id, removed_by=actor)]


def _require_admin(state: RoomState, actor: str) -> None:
    if state.members.get(actor) != "admin":
        raise NotRoomAdmin("only room admins may do this")
