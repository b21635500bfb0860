"""HTTP request and response bodies; requests reject unknown fields so typos fail loudly."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.events import (
    Attachment,
    ForwardedFrom,
    MessageType,
    PresenceStatus,
    RoomRole,
    RoomSettings,
    RoomType,
    Visibility,
)

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
DisplayName = Annotated[str, msgspec.Meta(max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=2000)]


class CreateRoom(_Request):
    type: CreatableRoomType
    members: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    name: RoomName | None = None
    metadata: dict[str, Any] | None = None
    display_name: DisplayName | None = None
    description: Description | None = None
    visibility: Visibility | None = None  # channels only; default private
    settings: RoomSettings | None = None


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
    display_name: DisplayName | UnsetType | None = UNSET
    description: Description | UnsetType | None = UNSET
    settings: RoomSettings | UnsetType = UNSET


class AddMembers(_Request):
    user_ids: Annotated[list[UserId], msgspec.Meta(min_length=1, max_length=1000)]


MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MediaId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MAX_ATTACHMENTS = 10
MAX_MENTIONS = 100
MAX_FORWARD_TARGETS = 20
# Mentions of everyone in the room, beside user ids.
ROOM_MENTIONS = ("@room", "@here")
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
    # Members of the room, or "@room" / "@here" for all of them.
    mentions: Annotated[list[UserId], msgspec.Meta(max_length=MAX_MENTIONS)] = []


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


class LastMessage(msgspec.Struct):
    """A room's newest message as it reads now: a deleted one has an empty preview and `deleted: true`."""

    message_id: str
    seq: int
    sender_id: str
    preview: str  # the first 140 characters
    deleted: bool = False


class Room(msgspec.Struct):
    room_id: str
    type: RoomType
    unique_key: str | None
    name: str | None
    metadata: dict[str, Any] | None
    last_seq: int
    created_at: datetime
    created_by: str | None = None
    display_name: str | None = None
    description: str | None = None
    visibility: Visibility | None = None  # channels: public or private
    settings: RoomSettings = msgspec.field(default_factory=RoomSettings)
    member_count: int = 0
    last_message_at: datetime | None = None
    last_message: LastMessage | None = None
    # The caller's: how far they have read, the messages of others after that (not deleted), those of them
    # that mention the caller, and the caller's mute and archive.
    read_seq: int = 0
    unread_count: int = 0
    mention_count: int = 0
    is_muted: bool = False
    is_archived: bool = False
    deleted_at: datetime | None = None  # deleted for everyone (DELETE /rooms/{id}?scope=for_everyone)


class UnreadRoom(msgspec.Struct):
    room_id: str
    unread_count: int
    mention_count: int
    last_seq: int
    read_seq: int
    is_muted: bool


class UnreadTotals(msgspec.Struct):
    unread_count: int  # over the rooms that are not muted
    mention_count: int  # over every room: mentions break through a mute
    rooms_with_unread: int  # not muted, unread_count > 0


class Unread(msgspec.Struct):
    rooms: list[UnreadRoom]
    totals: UnreadTotals


class UserRoomState(msgspec.Struct):
    """The caller's own state of a room."""

    room_id: str
    is_muted: bool
    is_archived: bool


class ReadState(msgspec.Struct):
    room_id: str
    read_seq: int
    unread_count: int
    mention_count: int = 0


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
    display_name: str | None = None  # from the tenant's users, when the member is registered
    avatar_url: str | None = None
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
    mentions: list[str] = []
    forwarded_from: ForwardedFrom | None = None


class ForwardMessage(_Request):
    room_ids: Annotated[list[RoomId], msgspec.Meta(min_length=1, max_length=MAX_FORWARD_TARGETS)]


class ForwardTarget(msgspec.Struct, omit_defaults=True):
    """What happened in one target room: the new message, or the error that room answered."""

    room_id: str
    ok: bool
    message_id: str | None = None
    seq: int | None = None
    error: dict[str, Any] | None = None  # {code, message} as the send to that room would have answered


class ForwardResult(msgspec.Struct):
    results: list[ForwardTarget]


class Mention(msgspec.Struct):
    """A message that mentions the caller, and its room."""

    room_id: str
    message: Message


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


class ReactionToggled(msgspec.Struct):
    """The answer to a toggle: whether the caller's reaction is now there (`added`) or was taken back."""

    message_id: str
    emoji: str
    added: bool
    seq: int
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


class TypingUpdate(_Request):
    """POST /rooms/{room_id}/typing: the caller started (true) or stopped (false) typing."""

    typing: bool = True


SyncSeq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class SyncRequest(_Request):
    """POST /sync: the seq the client has of each room it follows (0 for none yet), and events per room."""

    rooms: dict[RoomId, SyncSeq]
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50


class RoomSync(msgspec.Struct):
    """One room of a sync or poll answer: the events after the client's seq, in seq order."""

    events: list[RoomEvent]
    # The seq to send next time: the last event's here, else the one the client sent.
    last_seq: int
    # More events follow last_seq than `limit` allowed in this answer.
    has_more: bool


class SyncResult(msgspec.Struct):
    """The listed rooms the caller belongs to, the rooms it belongs to but did not list, and those it no
    longer reads (left, removed, or never its own: each looks the same)."""

    rooms: dict[str, RoomSync]
    joined: list[str]
    left: list[str]


class PolledRoom(msgspec.Struct):
    """One room of a poll answer: its new events, and who is typing there now."""

    events: list[RoomEvent]
    last_seq: int
    has_more: bool
    typing: list[str]


class PollResult(msgspec.Struct):
    """Every polled room the caller reads: events after its seq (all empty when the poll timed out) and who is
    typing; and the polled rooms the caller no longer belongs to (as in SyncResult)."""

    rooms: dict[str, PolledRoom]
    left: list[str]
    timed_out: bool


class FoundMessage(msgspec.Struct):
    """A search hit's message as it reads now (edits applied)."""

    id: str
    room_id: str
    sender_id: str
    seq: int
    content: str
    created_at: datetime
    edited_at: datetime | None


class SearchHit(msgspec.Struct):
    """One message matching a search, with the fragments of it that match."""

    message: FoundMessage
    # HTML-escaped fragments of the content, each match in <mark>…</mark>.
    highlights: list[str]
    message_id: str
    room_id: str
    seq: int
    sender_id: str
    created_at: datetime
    snippet: str  # the highlights joined by " … "
    type: str = "text"
    attachments: list[Attachment] = []


class SearchResults(msgspec.Struct):
    """A page of search hits, newest first; `next_cursor` fetches the next (older) page, null on the last."""

    data: list[SearchHit]
    total: int
    next_cursor: str | None
