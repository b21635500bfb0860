"""Room rules: creating rooms (one DM per pair), renaming, and who may join or leave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from msgspec import UNSET, UnsetType

from schemas.api import DM_MEMBERS, CreateRoom, UpdateRoom
from schemas.errors import Blocked, Forbidden, NotAMember, NotFound, RoomWasDeleted, ValidationError
from schemas.events import Event, MemberJoined, MemberRemoved, RoomCreated, RoomDeleted, RoomUpdated
from service.domain.authorization import Action, allowed, authorize


@dataclass(frozen=True)
class Actor:
    """The user acting, with their tenant role."""

    user_id: str
    role: str


@dataclass(frozen=True)
class RoomState:
    """What membership rules need to know about a room: its type and its active members' roles."""

    room_type: Literal["dm", "group", "channel", "support"]
    members: dict[str, Literal["admin", "member"]]
    visibility: Literal["public", "private"] | None = None
    deleted: bool = False  # deleted for everyone: it takes no more writes


def dm_key(a: str, b: str) -> str:
    """The unique key of the DM between two users, the same whoever creates it."""
    first, second = sorted((a, b))
    return f"dm:{quote(first, safe='')}:{quote(second, safe='')}"


def decide_create(
    actor: Actor, cmd: CreateRoom, room_id: str, *, blocked_by: frozenset[str] = frozenset()
) -> tuple[list[Event], str | None]:
    """Events that create a room with the actor as admin, and the room's unique key (DMs only).

    `blocked_by` holds the invited users who blocked the actor: they cannot be pulled into a room.
    """
    authorize("room.create", actor.role)
    others = [u for u in dict.fromkeys(cmd.members) if u != actor.user_id]
    _refuse_blocked(others, blocked_by)
    unique_key = None
    if cmd.visibility is not None and cmd.type != "channel":
        raise ValidationError("only channels have a visibility", field="visibility")
    if cmd.type == "dm":
        if len(others) != 1 or not DM_MEMBERS[0] <= len(cmd.members) <= DM_MEMBERS[1]:
            raise ValidationError("a dm has exactly two members: the caller and one other user", field="members")
        unique_key = dm_key(actor.user_id, others[0])
    events: list[Event] = [
        RoomCreated(room_id=room_id, room_type=cmd.type, created_by=actor.user_id, unique_key=unique_key,
                    name=cmd.name, metadata=cmd.metadata, display_name=cmd.display_name, description=cmd.description,
                    visibility=(cmd.visibility or "private") if cmd.type == "channel" else None, settings=cmd.settings),
        MemberJoined(user_id=actor.user_id, role="admin", added_by=actor.user_id),
    ]
    events += [MemberJoined(user_id=u, role="member", added_by=actor.user_id) for u in others]
    return events, unique_key


def decide_update(state: RoomState, actor: Actor, cmd: UpdateRoom) -> list[Event]:
    """A rename / metadata / display name / description change by a room admin (or a tenant admin)."""
    _authorize_in_room("room.update", state, actor)
    _refuse_deleted(state)
    if all(v is UNSET for v in (cmd.name, cmd.metadata, cmd.display_name, cmd.description, cmd.settings)):
        raise ValidationError("nothing to update: give name, metadata, display_name, description and/or settings")
    return [
        RoomUpdated(
            updated_by=actor.user_id,
            name=None if cmd.name is UNSET else cmd.name,
            metadata=None if cmd.metadata is UNSET else cmd.metadata,
            display_name=None if cmd.display_name is UNSET else cmd.display_name,
            description=None if cmd.description is UNSET else cmd.description,
            set_name=cmd.name is not UNSET,
            set_metadata=cmd.metadata is not UNSET,
            set_display_name=cmd.display_name is not UNSET,
            set_description=cmd.description is not UNSET,
            settings=None if isinstance(cmd.settings, UnsetType) else cmd.settings,
        )
    ]


def decide_add_members(
    state: RoomState, actor: Actor, user_ids: list[str], *, blocked_by: frozenset[str] = frozenset()
) -> list[Event]:
    """Room admins add users; users already in the room are skipped, so adding is idempotent."""
    _authorize_in_room("member.add", state, actor)
    _refuse_deleted(state)
    if state.room_type == "dm":
        raise Forbidden("the members of a dm are fixed")
    new = [u for u in dict.fromkeys(user_ids) if u not in state.members]
    _refuse_blocked(new, blocked_by)
    return [MemberJoined(user_id=u, role="member", added_by=actor.user_id) for u in new]


def decide_join(state: RoomState, actor: Actor) -> list[Event]:
    """Anyone in the tenant joins a public channel (again: nothing); other rooms are invite-only."""
    authorize("room.join", actor.role)
    _refuse_deleted(state)
    if state.room_type != "channel" or state.visibility != "public":
        raise Forbidden("this room is invite-only: ask one of its admins to add you")
    if actor.user_id in state.members:
        return []
    return [MemberJoined(user_id=actor.user_id, role="member", added_by=actor.user_id)]


def decide_remove_member(state: RoomState, actor: Actor, user_id: str) -> list[Event]:
    """Members may leave; room admins (and tenant admins) may remove anyone."""
    _authorize_in_room("member.leave" if user_id == actor.user_id else "member.remove", state, actor)
    _refuse_deleted(state)
    if state.room_type == "dm":
        raise Forbidden("the members of a dm are fixed")
    if user_id not in state.members:
        raise NotFound("no such member in this room", field="user_id")
    return [MemberRemoved(user_id=user_id, removed_by=actor.user_id)]


def decide_delete_room(state: RoomState, actor: Actor) -> list[Event]:
    """End the room for everyone: its admins (and tenant admins) may, and either member of a DM; once only."""
    if not (state.room_type == "dm" and actor.user_id in state.members):
        _authorize_in_room("room.delete", state, actor)
    _refuse_deleted(state)
    return [RoomDeleted(deleted_by=actor.user_id)]


def _refuse_deleted(state: RoomState) -> None:
    if state.deleted:
        raise RoomWasDeleted("the room was deleted")


def _authorize_in_room(action: Action, state: RoomState, actor: Actor) -> None:
    authorize_in_room(action, actor, state.members.get(actor.user_id))


def authorize_in_room(action: Action, actor: Actor, room_role: str | None) -> None:
    """Refuse an action inside a room: NOT_A_MEMBER for outsiders the rule does not admit, else the rule's 403."""
    if allowed(action, actor.role, room_role):
        return
    if room_role is None:
        raise NotAMember("you are not a member of this room")
    authorize(action, actor.role, room_role)


def _refuse_blocked(user_ids: list[str], blocked_by: frozenset[str]) -> None:
    if blockers := [u for u in user_ids if u in blocked_by]:
        raise Blocked(f"{blockers[0]} does not accept rooms with you", field="members")
