"""Domain events: one tagged union, stored as JSON in the log and decoded back without loss."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from schemas.upcasting import VERSION_KEY, current_version, upcast_json

RoomType = Literal["dm", "group", "channel", "support"]
RoomRole = Literal["admin", "member"]
MessageType = Literal["text", "image", "file", "voice", "system"]


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, omit_defaults=True):
    """Base of every event payload; the tag is the event type."""


class RoomCreated(_Event, tag="room.created"):
    room_id: str
    room_type: RoomType
    created_by: str
    unique_key: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None


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
    # msgspec omits None; these say which fields the update touched so `name: null` can clear a name.
    set_name: bool = False
    set_metadata: bool = False


class Attachment(msgspec.Struct, omit_defaults=True):
    """A confirmed upload as a message carries it: the media's facts, never its bytes or a URL."""

    media_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None


class MessageSent(_Event, tag="message.sent"):
    message_id: str
    sender_id: str
    content: str
    meta: dict[str, Any] | None = None
    client_msg_id: str | None = None
    thread_id: str | None = None  # a reply: the message_id of the thread's root, in the same room
    erased: bool = False  # the content and meta were erased (`roomlog erase`): the one rewrite of stored events
    message_type: MessageType = "text"
    attachments: list[Attachment] = []


class MessageEdited(_Event, tag="message.edited"):
    """The sender replaced a message's content; the message keeps its seq."""

    message_id: str
    edited_by: str
    content: str
    erased: bool = False


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


class UserBlocked(_Event, tag="user.blocked"):
    """The stream's user blocked `user_id`: that user cannot pull them into DMs or rooms."""

    user_id: str


class UserUnblocked(_Event, tag="user.unblocked"):
    user_id: str


PresenceStatus = Literal["online", "away", "dnd", "offline"]


class PresenceStatusSet(_Event, tag="presence.status_set"):
    """The stream's user chose a status ("online": back to automatic); it and the text lapse at `expires_at`."""

    status: PresenceStatus
    status_text: str | None = None
    status_emoji: str | None = None
    expires_at: datetime | None = None


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


class ContentErased(_Event, tag="content.erased"):
    """The record of an erasure: `events` stored events of the tenant (of `user_id` alone, when set) lost their
    content. It lives in the tenant's erasures stream; the erased events keep their place and seq."""

    erased_by: str
    events: int
    user_id: str | None = None


# --- the support desk -------------------------------------------------------------------------------------
# A tenant's desk stream (`support:<tenant>`) holds everything that grants capacity or takes it: agents'
# profiles and statuses, teams, and assignments, so appends to it at the seq a router read serialise
# every routing decision of the tenant (see service/support/router.py). Each session has its own stream.


class SupportAgentProfileSet(_Event, tag="support.agent.profile_set"):
    agent_id: str
    max_sessions: int
    skills: list[str]
    languages: list[str]
    teams: list[str]
    set_by: str


class SupportAgentStatusChanged(_Event, tag="support.agent.status_changed"):
    agent_id: str
    status: Literal["available", "busy", "away", "offline"]
    by: str
    reason: str | None = None
    return_time: datetime | None = None


class SupportTeamSaved(_Event, tag="support.team.saved"):
    """A team was created or changed (the whole team is restated)."""

    team_id: str
    name: str
    members: list[str]
    required_skills: list[str]
    by: str
    escalation_level: str | None = None


class SupportDeskSettingsSet(_Event, tag="support.desk.settings_set"):
    """A tenant admin set the desk's settings (the whole set is restated)."""

    refuse_without_agents: bool
    by: str


class RoutingCandidate(msgspec.Struct, omit_defaults=True):
    agent_id: str
    reasons: list[str]
    spare: int


class SupportSessionAssigned(_Event, tag="support.session.assigned"):
    """The router gave a session to an agent; lives in the desk stream with the policy and every candidate."""

    session_id: str
    agent_id: str
    policy_version: str
    candidates: list[RoutingCandidate]
    waited_seconds: float = 0.0
    # The log position the session started waiting at, as the router saw it: an assignment answers that
    # wait only, so one that crossed a transfer or escalation (a new wait) changes nothing, in any order.
    arrival: int = 0


class SupportSessionCreated(_Event, tag="support.session.created"):
    session_id: str
    room_id: str
    customer_id: str
    channel: str
    priority: str
    created_by: str
    initial_message: str | None = None
    context: dict[str, Any] | None = None
    skills: list[str] = []
    language: str | None = None
    team_id: str | None = None


class SupportSessionHeld(_Event, tag="support.session.held"):
    by: str


class SupportSessionResumed(_Event, tag="support.session.resumed"):
    by: str


class SupportSessionTransferred(_Event, tag="support.session.transferred"):
    target_type: Literal["agent", "team"]
    target_id: str
    by: str
    from_agent: str | None = None
    reason: str | None = None
    notes: str | None = None  # internal: never shown to the customer


class SupportSessionEscalated(_Event, tag="support.session.escalated"):
    level: str
    priority: str
    by: str
    team_id: str | None = None
    reason: str | None = None
    urgency: str | None = None


class SupportSessionEnded(_Event, tag="support.session.ended"):
    resolution: str
    status: Literal["resolved", "closed"]
    by: str
    resolution_notes: str | None = None
    tags: list[str] = []


class SupportSessionRated(_Event, tag="support.session.rated"):
    score: int
    by: str
    comment: str | None = None


class MediaUploadRequested(_Event, tag="media.upload_requested"):
    """A user was given a presigned URL to put one object of this size and content type into the store."""

    media_id: str
    uploaded_by: str
    filename: str
    content_type: str
    size: int
    object_key: str
    expires_at: datetime
    room_id: str | None = None


class MediaConfirmed(_Event, tag="media.confirmed"):
    """The uploaded object was checked: its size, its sha256 and the content type its bytes really have."""

    media_id: str
    content_type: str
    sha256: str
    size: int
    width: int | None = None
    height: int | None = None
    thumbnail_key: str | None = None


class MediaRejected(_Event, tag="media.rejected"):
    """A confirm found the object wrong (size, type, an image too large): the object was removed."""

    media_id: str
    code: str
    reason: str


class MediaRemoved(_Event, tag="media.removed"):
    """The media's objects were removed from the store: every message it was attached to is deleted."""

    media_id: str
    reason: str


Event = (
    RoomCreated | MemberJoined | MemberRemoved | RoomUpdated | MessageSent | MessageEdited | MessageDeleted
    | ReactionAdded | ReactionRemoved | AckRecorded | ReadRecorded | UserBlocked | UserUnblocked
    | PresenceStatusSet
    | NotificationSent
    | SubscriptionAdded | SubscriptionRemoved | DeliveryFailed | DeliveryRetried | DeliveryDiscarded | ContentErased
    | SupportAgentProfileSet | SupportAgentStatusChanged | SupportTeamSaved | SupportDeskSettingsSet
    | SupportSessionAssigned
    | SupportSessionCreated | SupportSessionHeld | SupportSessionResumed | SupportSessionTransferred
    | SupportSessionEscalated | SupportSessionEnded | SupportSessionRated
    | MediaUploadRequested | MediaConfirmed | MediaRejected | MediaRemoved
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
                ReactionAdded, ReactionRemoved, AckRecorded, ReadRecorded, UserBlocked, UserUnblocked,
                PresenceStatusSet, NotificationSent,
                SubscriptionAdded, SubscriptionRemoved, DeliveryFailed, DeliveryRetried, DeliveryDiscarded,
                ContentErased, SupportAgentProfileSet, SupportAgentStatusChanged, SupportTeamSaved,
                SupportDeskSettingsSet, SupportSessionAssigned, SupportSessionCreated, SupportSessionHeld,
                SupportSessionResumed,
                SupportSessionTransferred, SupportSessionEscalated, SupportSessionEnded, SupportSessionRated,
                MediaUploadRequested, MediaConfirmed, MediaRejected, MediaRemoved)
}

SUPPORT_SESSION_EVENT_TYPES = frozenset({
    "support.session.created", "support.session.held", "support.session.resumed", "support.session.transferred",
    "support.session.escalated", "support.session.ended", "support.session.rated",
})


def type_of(event: Event) -> str:
    """The event's type tag, e.g. "message.sent"."""
    return _TAGS[type(event)]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)
_meta_decoder = msgspec.json.Decoder(EventMetadata)


def event_fields(event: Event) -> dict[str, Any]:
    """An event's fields without its type tag (clients get the tag beside them)."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    data.pop("type", None)
    return data


def encode_event(event: Event) -> str:
    """Serialise an event for the `data` column (tag included, and its version once that is above 1)."""
    text = _encoder.encode(event).decode()
    version = current_version(type_of(event))
    return text if version == 1 else f'{text[:-1]},"{VERSION_KEY}":{version}}}'


def decode_event(data: str | bytes) -> Event:
    """Parse a stored event back into its Struct, upcast to the current shape of its type."""
    return _decoder.decode(upcast_json(data))


def encode_metadata(meta: EventMetadata) -> str:
    """Serialise metadata for the `metadata` column."""
    return _encoder.encode(meta).decode()


def decode_metadata(data: str | bytes) -> EventMetadata:
    """Parse the stored metadata."""
    return _meta_decoder.decode(data)
