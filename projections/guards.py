"""Conditions an append must meet, checked under the stream lock in the append transaction.

The database evaluates them (`rl_guard_failures` in eventstore/migrations/005, extended by 008, 030, 031 and 077); this
module says how each guard is passed there and what a failure means to the client.

A route decides on what it read; a guard re-checks the part that another request could change in
between (membership, a DM's uniqueness, a message not deleted yet), so the rule and the write are one
atomic step.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from eventstore.append import GuardColumns, stream_key
from eventstore.types import Queryable
from projections.members import access_of
from schemas.errors import (
    MessageNotFound,
    MessageWasDeleted,
    NotAMember,
    NotRoomAdmin,
    PostingRestricted,
    RoomExists,
    RoomlogError,
    RoomNotFound,
    RoomWasDeleted,
    ValidationError,
)


@dataclass(frozen=True, slots=True)
class MemberOf:
    """The actor must be an active member of the room (with `role`, when given; a `poster` must be an admin when
    the room lets only admins post)."""

    tenant_id: str
    room_id: str
    user_id: str
    role: Literal["admin", "poster"] | None = None


@dataclass(frozen=True, slots=True)
class PostsNaming:
    """The actor must be a member who may post in the room (MemberOf with role `poster`); every one of `media_ids`
    a confirmed upload of theirs in the tenant (a medium removed since the send read its facts fails), and every
    one of `mentions` an active member of the room."""

    tenant_id: str
    room_id: str
    user_id: str
    media_ids: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UniqueRoomKey:
    """No room of the tenant may hold this unique key yet (one DM per pair)."""

    tenant_id: str
    unique_key: str


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """The message must be in the room and not deleted (and `member`, when given, must hold too).

    `deletes`: the append deletes the message, so no other change of it may share its batch.
    """

    room_id: str
    message_id: str
    member: MemberOf | None
    deletes: bool = False


@dataclass(frozen=True, slots=True)
class EndsRoom:
    """The append deletes the room for everyone: it shares its batch with no other append to the room, so nothing
    in its batch lands after the room.deleted event (its expected_seq covers what was decided on)."""

    room_id: str


def encode_guard(guard: object) -> GuardColumns:
    """How a guard is passed to `rl_guard_failures` (migrations 005, 008), which evaluates it under the locks."""
    if isinstance(guard, MemberOf):
        return ("member", guard.room_id, guard.user_id, guard.role)
    if isinstance(guard, PostsNaming):
        named = json.dumps({"media": guard.media_ids, "mentions": guard.mentions})
        return ("poster_refs", guard.room_id, guard.user_id, named)
    if isinstance(guard, EndsRoom):
        return (None, None, None, None)
    if isinstance(guard, LiveMessage):
        member = guard.member
        kind = "admin_message" if member is not None and member.role == "admin" else "message"
        return (kind, guard.room_id, member.user_id if member is not None else None, guard.message_id)
    if isinstance(guard, UniqueRoomKey):
        return ("unique_key", guard.unique_key, None, None)
    raise TypeError(f"unknown guard {guard!r}")


def batch_key(guard: object) -> tuple[Hashable, bool] | None:
    """The message a LiveMessage guard is about, and whether its append deletes it; None for other guards.

    `rl_guard_failures` sees the tables as they were before the batch, so a deletion and another change of
    the same message in one batch would both pass; the appender gives them batches of their own.
    """
    if isinstance(guard, LiveMessage):
        return (guard.room_id, guard.message_id), guard.deletes
    if isinstance(guard, EndsRoom):
        return stream_key(guard.room_id), True
    return None


def guard_error(guard: object, code: str, detail: str | None) -> RoomlogError:
    """The error for a guard `rl_guard_failures` reported as failed with `code`."""
    if code == "ROOM_EXISTS":
        return RoomExists("a DM between these users already exists", room_id=detail)
    if code == "ROOM_NOT_FOUND":
        return RoomNotFound("room not found", field="room_id")
    if code == "NOT_A_MEMBER":
        return NotAMember("you are not a member of this room")
    if code == "NOT_ROOM_ADMIN":
        return NotRoomAdmin("only room admins may do this")
    if code == "POSTING_RESTRICTED":
        return PostingRestricted("only the room's admins may post here")
    if code == "MESSAGE_NOT_FOUND":
        return MessageNotFound("no such message in this room", field="message_id")
    if code == "MESSAGE_DELETED":
        return MessageWasDeleted("the message was deleted")
    if code == "ROOM_DELETED":
        return RoomWasDeleted("the room was deleted")
    if code == "MEDIA_NOT_CONFIRMED":  # the message check_attachable gives when it finds the medium missing
        return ValidationError(f"{detail} is not a confirmed upload of yours", field="attachments")
    if code == "MENTION_NOT_MEMBER":
        return ValidationError(f"{detail} is not a member of this room", field="mentions")
    raise ValueError(f"unknown guard failure {code!r} for {guard!r}")


def membership_error(guard: MemberOf, room_exists: bool, role: str | None) -> RoomlogError | None:
    """The error a MemberOf guard yields for what the database holds, or None (the rule rl_guard_failures applies)."""
    if not room_exists:
        return guard_error(guard, "ROOM_NOT_FOUND", None)
    if role is None:
        return guard_error(guard, "NOT_A_MEMBER", None)
    if guard.role == "admin" and role != "admin":
        return guard_error(guard, "NOT_ROOM_ADMIN", None)
    return None


async def current_membership_error(conn: Queryable, guard: MemberOf) -> RoomlogError | None:
    """The error `guard` fails with on what the read models hold now, or None (appends re-check it under the lock)."""
    exists, role = await access_of(conn, guard.tenant_id, guard.room_id, guard.user_id)
    return membership_error(guard, exists, role)
