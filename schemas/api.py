"""HTTP request and response bodies; requests reject unknown fields so typos fail loudly."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.events import Attachment, MessageType, PresenceStatus, RoomRole, RoomType

MAX_CONTENT_CHARS = 4000
# Text that is also one segment of a URL path (`…/members/{user_id}`, `…/reactions/{emoji}`): any Unicode
# but whitespace, '/' and control characters (C0, DEL, C1; PostgreSQL cannot store NUL), and not '.' or
# '..', which clients resolve away. `(?!\n)` because `$` alone also matches before a final newline.
SEGMENT_PATTERN = r"^(?!\.\.?$)[^\s/\x00-\x1f\x7f-\x9f]+$(?!\n)"
MAX_USER_ID_CHARS = 128
# The one rule for user ids, in bodies, path parameters and X-User-Id alike (see `is_user_id`).
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=SEGMENT_PATTERN)]
USER_ID_RULE = "1-128 characters, no whitespace, '/' or control characters, not '.' or '..'"
_SEGMENT = re.compile(SEGMENT_PATTERN)
# What PostgreSQL's bigint holds: the largest seq or count a body may name.
INT64_MAX = 2**63 - 1
ClientMsgId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
RoomName = Annotated[str, msgspec.Meta(max_length=200)]
# Not only whitespace (spelled so that Python's and ECMA-262's regexes agree). The length is checked by the
# domain rule so an over-long message gets its own code (MESSAGE_TOO_LONG); the description states it anyway.
Content = Annotated[
    str, msgspec.Meta(min_length=1, pattern=r"[^\s\x1c-\x1f\x85]", extra_json_schema={"maxLength": MAX_CONTENT_CHARS}),
]


def is_user_id(value: str) -> bool:
    """Whether `value` is a valid user id: exactly what `UserId` accepts in a body."""
    return 0 < len(value) <= MAX_USER_ID_CHARS and _SEGMENT.search(value) is not None


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    pass


# Support rooms are opened by POST /support/sessions only.
CreatableRoomType = Literal["dm", "group", "channel"]


class CreateRoom(_Request):
    type: CreatableRoomType
    members: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    name: RoomName | None = None
    metadata: dict[str, Any] | None = None


# A dm names its one other user, the caller beside it at most; the domain rule checks who (decide_create).
DM_MEMBERS = (1, 2)
CreateRoomBody = Annotated[CreateRoom, msgspec.Meta(extra_json_schema={
    "if": {"properties": {"type": {"const": "dm"}}, "required": ["type"]},
    "then": {"properties": {"members": {"minItems": DM_MEMBERS[0], "maxItems": DM_MEMBERS[1]}},
             "required": ["members"]},
})]


class UpdateRoom(_Request):
    name: RoomName | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET


class AddMembers(_Request):
    user_ids: Annotated[list[UserId], msgspec.Meta(min_length=1, max_length=1000)]


MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MediaId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_ATTACHMENTS = 10
RoomId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SendMessage(_Request):
    content: Content
    meta: dict[str, Any] | None = None
    client_msg_id: ClientMsgId | None = None
    # Reply in the thread of this message (a top-level message of the same room); threads are one level deep.
    thread_id: MessageId | None = None
    type: MessageType = "text"
    # Confirmed uploads of the sender's (POST /media/upload-url, then confirm).
    attachments: Annotated[list[MediaId], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = []


class EditMessage(_Request):
    content: Content


# One grapheme cluster can take many code points (flags, skin tones, families); custom names like ":party:" too.
# An emoji is removed by its path (`DELETE …/reactions/{emoji}`), so it is a path segment like a user id.
Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SEGMENT_PATTERN)]


class AddReaction(_Request):
    emoji: Emoji


# A position in a room's log: 0 is before its first event.
SeqNumber = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class Ack(_Request):
    room_id: RoomId
    seq: SeqNumber


class MarkRead(_Request):
    seq: SeqNumber


class Room(msgspec.Struct):
    room_id: str
    type: RoomType
    unique_key: str | None
    name: str | None
    metadata: dict[str, Any] | None
    last_seq: int
    created_at: datetime
    # The caller's: how far they have read, and the messages of others after that (not deleted; up to 10,000).
    read_seq: int = 0
    unread_count: int = 0


class ReadState(msgspec.Struct):
    room_id: str
    read_seq: int
    unread_count: int


class Receipt(msgspec.Struct):
    """How far a member has received (acked) and read a room."""

    user_id: str
    delivered_seq: int
    read_seq: int
    read_at: datetime | None


class Member(msgspec.Struct):
    user_id: str
    role: RoomRole
    joined_at: datetime
    status: PresenceStatus = "offline"  # presence as others see it (service/realtime/presence.py)


class SendResult(msgspec.Struct):
    message_id: str
    seq: int
    created_at: datetime


class ReactionCount(msgspec.Struct):
    emoji: str
    count: int
    me: bool  # whether the caller is among those who reacted


class Message(msgspec.Struct):
    """A message as it reads now: edits applied; a deleted one keeps its seq with empty content."""

    message_id: str
    sender_id: str
    seq: int
    content: str
    meta: dict[str, Any] | None
    created_at: datetime
    client_msg_id: str | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    reactions: list[ReactionCount] = []
    thread_id: str | None = None  # set on replies: the root's message_id
    reply_count: int = 0  # on a thread's root: replies so far (deleted ones included, as tombstones)
    last_reply_at: datetime | None = None
    type: str = "text"
    attachments: list[Attachment] = []


class MessageChange(msgspec.Struct):
    """The answer to an edit or delete: the seq of the event that recorded it."""

    message_id: str
    seq: int
    at: datetime


class ReactionChange(msgspec.Struct):
    """The answer to adding or removing a reaction; `changed` is false when it already was so (no event)."""

    message_id: str
    emoji: str
    changed: bool
    seq: int | None
    reactions: list[ReactionCount]


class Reactors(msgspec.Struct):
    emoji: str
    count: int
    user_ids: list[str]


class RoomEvent(msgspec.Struct):
    """One entry of a room's raw log as clients sync it."""

    seq: int
    type: str
    actor: str | None
    created_at: datetime
    data: dict[str, Any]


class Success(msgspec.Struct):
    success: Literal[True] = True


class Health(msgspec.Struct):
    status: Literal["ok", "degraded"]
    uptime: str
    db_writable: bool
    nats_connected: bool
    # JetStream set up, relay and fan-out running: this instance delivers in real time.
    realtime_ready: bool
    # Per catch-up projection (the search index): committed events it has not applied yet.
    catch_up_behind: dict[str, int] = {}


class Liveness(msgspec.Struct):
    """The process is up and its event loop answers."""

    status: Literal["ok"]


class Readiness(msgspec.Struct):
    """Whether this instance should get traffic: each check, and `ready` when all of them hold (else 503)."""

    status: Literal["ready", "not_ready"]
    db_writable: bool
    nats_connected: bool
    # The relay task is running on this instance (leading or standing by to take over).
    relay_running: bool
    realtime_ready: bool
class Erasure(msgspec.Struct):
    """What an erasure changed: stored events whose content went, the messages they were, JetStream copies."""

    events: int
    messages: int
    jetstream_messages: int
