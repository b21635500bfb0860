"""Domain events: one tagged union, stored as JSON in the log and decoded back without loss."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

RoomType = Literal["dm", "group", "channel"]
RoomRole = Literal["admin", "member"]
# Channels only: a public one is listed to, and joinable by, everyone in the tenant; a private one is invite-only.
Visibility = Literal["public", "private"]


WhoCanPost = Literal["all_members", "admins"]


class RoomSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A room's settings: `admins` makes it an announcement room, where only its admins post."""

    who_can_post: WhoCanPost = "all_members"


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, omit_defaults=True):
    """Base of every event payload; the tag is the event type."""


class RoomCreated(_Event, tag="room.created"):
    room_id: str
    room_type: RoomType
    created_by: str
    unique_key: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    display_name: str | None = None
    description: str | None = None
    visibility: Visibility | None = None  # set on channels
    settings: RoomSettings | None = None


class MemberJoined(_Event, tag="member.joined"):
    user_id: str
    role: RoomRole
    added_by: str


class MemberRemoved(_Event, tag="member.removed"):
    user_id: str
    removed_by: str


class RoomUpdated(_Event, tag="room.updated"):
    updated_by: str
    name: str | None = None
    metadata: dict[str, Any] | None = None
    display_name: str | None = None
    description: str | None = None
    # msgspec omits None; these say which fields the update touched so `name: null` can clear a name.
    set_name: bool = False
    set_metadata: bool = False
    set_display_name: bool = False
    set_description: bool = False
    settings: RoomSettings | None = None  # the new settings, whole, when they changed


class ForwardedFrom(msgspec.Struct):
    """Where a forwarded message was forwarded from."""

    room_id: str
    message_id: str


class MessageSent(_Event, tag="message.sent"):
    message_id: str
    sender_id: str
    content: str
    meta: dict[str, Any] | None = None
    client_msg_id: str | None = None
    thread_id: str | None = None  # a reply: the message_id of the thread's root, in the same room
    # Members the message mentions, and "@room" / "@here" for everyone in the room.
    mentions: list[str] = []
    forwarded_from: ForwardedFrom | None = None


class MessageEdited(_Event, tag="message.edited"):
    """The sender replaced a message's content; the message keeps its seq."""

    message_id: str
    edited_by: str
    content: str


class MessageDeleted(_Event, tag="message.deleted"):
    """The message is withdrawn: read models and log reads show it without content from now on."""

    message_id: str
    deleted_by: str


class _ReactionChange(_Event):
    message_id: str
    user_id: str
    emoji: str


class ReactionAdded(_ReactionChange, tag="reaction.added"):
    """`user_id` reacted to a message with `emoji`; reactions are a set per (message, emoji, user)."""


class ReactionRemoved(_ReactionChange, tag="reaction.removed"):
    """`user_id` took their `emoji` reaction to a message back."""


class _RoomPosition(_Event):
    room_id: str
    seq: int


class AckRecorded(_RoomPosition, tag="ack.recorded"):
    """A user confirmed delivery of a room up to `seq`; lives in the user's own stream."""


class ReadRecorded(_RoomPosition, tag="read.recorded"):
    """A user has read a room up to `seq` (which implies delivery); lives in the user's own stream."""


class _RoomOfUser(_Event):
    room_id: str


class RoomMuted(_RoomOfUser, tag="room.muted"):
    """The stream's user muted a room: no offline webhooks for it except mentions; unread still counts."""


class RoomUnmuted(_RoomOfUser, tag="room.unmuted"):
    pass


class RoomArchived(_RoomOfUser, tag="room.archived"):
    """The stream's user archived a room at its `seq`: hidden from the default inbox until a newer message
    (unless the room is muted) or an un-archive."""

    seq: int


class RoomUnarchived(_RoomOfUser, tag="room.unarchived"):
    pass


class RoomCleared(_RoomOfUser, tag="room.cleared"):
    """The stream's user deleted a room's history for themselves up to `seq` (the room's last_seq then): their
    reads start after it, and the room is hidden from their inbox until a newer message."""

    seq: int


class UserBlocked(_Event, tag="user.blocked"):
    """The stream's user blocked `user_id`: that user cannot pull them into DMs or rooms."""

    user_id: str


class UserUnblocked(_Event, tag="user.unblocked"):
    user_id: str


class NotificationSent(_Event, tag="notification.sent"):
    """A tenant backend notified users (directly, a room's members, or a topic's subscribers)."""

    notification_id: str
    topic: str
    payload: dict[str, Any]
    user_ids: list[str] = []
    room_id: str | None = None
    topic_subscribers: bool = False


class SubscriptionAdded(_Event, tag="subscription.added"):
    topic: str


class SubscriptionRemoved(_Event, tag="subscription.removed"):
    topic: str


class DeliveryFailed(_Event, tag="delivery.failed"):
    """A delivery that must be confirmed (a webhook call) ran out of attempts: a dead letter."""

    delivery_id: str
    kind: Literal["message", "notification"]
    user_id: str
    attempts: int
    last_attempt_at: datetime
    error: str
    webhook_id: str | None = None
    room_id: str | None = None
    message_id: str | None = None
    notification_id: str | None = None
    topic: str | None = None
    job: dict[str, Any] | None = None  # what to send again on retry


class DeliveryRetried(_Event, tag="delivery.retried"):
    delivery_id: str
    by: str


class DeliveryDiscarded(_Event, tag="delivery.discarded"):
    delivery_id: str
    by: str


Event = (
    RoomCreated | MemberJoined | MemberRemoved | RoomUpdated | MessageSent | MessageEdited | MessageDeleted
    | ReactionAdded | ReactionRemoved | AckRecorded | ReadRecorded | RoomMuted | RoomUnmuted | RoomArchived
    | RoomUnarchived | RoomCleared | UserBlocked | UserUnblocked | NotificationSent
    | SubscriptionAdded | SubscriptionRemoved | DeliveryFailed | DeliveryRetried | DeliveryDiscarded
)

ROOM_EVENT_TYPES = frozenset({
    "room.created", "member.joined", "member.removed", "room.updated", "message.sent", "message.edited",
    "message.deleted", "reaction.added", "reaction.removed",
})


class EventMetadata(msgspec.Struct, omit_defaults=True):
    tenant_id: str
    actor: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as the log holds it: its global position, its stream and seq, and when it was written."""

    position: int
    stream_id: str
    seq: int
    tenant_id: str
    created_at: datetime
    event: Event
    metadata: EventMetadata

    @property
    def type(self) -> str:
        return type_of(self.event)


_TAGS: dict[type, str] = {
    cls: cls.__struct_config__.tag  # type: ignore[misc]
    for cls in (RoomCreated, MemberJoined, MemberRemoved, RoomUpdated, MessageSent, MessageEdited, MessageDeleted,
                ReactionAdded, ReactionRemoved, AckRecorded, ReadRecorded, RoomMuted, RoomUnmuted, RoomArchived,
                RoomUnarchived, RoomCleared, UserBlocked, UserUnblocked, NotificationSent,
                SubscriptionAdded, SubscriptionRemoved, DeliveryFailed, DeliveryRetried, DeliveryDiscarded)
}


def type_of(event: Event) -> str:
    """The event's type tag, e.g. "message.sent"."""
    return _TAGS[type(event)]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)
_meta_decoder = msgspec.json.Decoder(EventMetadata)


def encode_event(event: Event) -> str:
    """Serialise an event for the `data` column (tag included)."""
    return _encoder.encode(event).decode()


def decode_event(data: str | bytes) -> Event:
    """Parse a stored event back into its Struct."""
    return _decoder.decode(data)


def encode_metadata(meta: EventMetadata) -> str:
    """Serialise metadata for the `metadata` column."""
    return _encoder.encode(meta).decode()


def decode_metadata(data: str | bytes) -> EventMetadata:
    """Parse the stored metadata."""
    return _meta_decoder.decode(data)
