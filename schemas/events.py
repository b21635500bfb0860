"""Domain events: one tagged union, stored as JSON in the log and decoded back without loss."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.sla import BusinessCalendar, SlaPolicy
from schemas.upcasting import VERSION_KEY, current_version, upcast_json

RoomType = Literal["dm", "group", "channel", "support"]
RoomRole = Literal["admin", "member"]
MessageType = Literal["text", "image", "file", "voice", "system"]
# Channels only: a public one is listed to, and joinable by, everyone in the tenant; a private one is invite-only.
Visibility = Literal["public", "private"]


WhoCanPost = Literal["all_members", "admins"]


MAX_RETENTION_DAYS = 36500


class RoomSettings(msgspec.Struct, forbid_unknown_fields=True):
    """A room's settings: `admins` makes it an announcement room, where only its admins post; messages older than
    `message_retention_days` are redacted for everyone by the retention job (None keeps them)."""

    who_can_post: WhoCanPost = "all_members"
    message_retention_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_RETENTION_DAYS)] | None = None


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


class RoomDeleted(_Event, tag="room.deleted"):
    """The room was ended for everyone: its content is redacted in every read and nothing more is written to it."""

    deleted_by: str


class ForwardedFrom(msgspec.Struct):
    """Where a forwarded message was forwarded from."""

    room_id: str
    message_id: str


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
    # Members the message mentions, and "@room" / "@here" for everyone in the room.
    mentions: list[str] = []
    forwarded_from: ForwardedFrom | None = None


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
    reason: Literal["retention"] | None = None  # retention: redacted by the room's message_retention_days


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
    ticket_auto_close_days: int = 4  # solved tickets close after this many days


class SupportKbArticleSaved(_Event, tag="support.kb.article_saved"):
    """A knowledge-base article was written or changed (the whole article is restated); its stream is
    `support-kb:<tenant>:<article_id>`, so the stream's seq is the article's version."""

    article_id: str
    title: str
    body: str
    status: Literal["draft", "published", "archived"]
    locale: str
    by: str
    category: str | None = None
    tags: list[str] = []
    url: str | None = None


class SupportKbArticleDeleted(_Event, tag="support.kb.article_deleted"):
    article_id: str
    by: str


class SupportQuickActionExecuted(_Event, tag="support.quick_action.executed"):
    """A quick action was run on the session (this stream): what it was asked to do, decided before doing it.
    Recorded with the caller's idempotency key, so a repeated execute finds this one instead of running again."""

    execution_id: str
    action_id: str
    context: dict[str, Any]
    changes: list[str]
    by: str


class SupportQuickActionCompleted(_Event, tag="support.quick_action.completed"):
    execution_id: str
    action_id: str
    status: Literal["succeeded", "failed"]
    message: str
    result: dict[str, Any] = {}
    error_code: str | None = None


class SupportCreditAdded(_Event, tag="support.credit.added"):
    """Store credit for a customer, in the customer's ledger stream (`support-credit:<tenant>:<customer>`)."""

    customer_id: str
    amount_minor: int  # in the currency's minor unit (cents)
    currency: str
    by: str
    reason: str | None = None
    execution_id: str | None = None


# --- SLA configuration ---------------------------------------------------------------------------------
# A tenant's SLA stream (`support-sla:<tenant>`) holds its business-hours calendars and SLA policies. Each save
# is a whole new version (1, 2, ...) of its calendar or policy, so a ticket can keep the version it was applied
# with; appends go at the seq the command read, so versions never collide.


class SupportSlaCalendarSaved(_Event, tag="support.sla.calendar_saved"):
    calendar_id: str
    version: int
    name: str
    calendar: BusinessCalendar
    by: str


class SupportSlaCalendarDeleted(_Event, tag="support.sla.calendar_deleted"):
    calendar_id: str
    version: int
    by: str


class SupportSlaPolicySaved(_Event, tag="support.sla.policy_saved"):
    policy_id: str
    version: int
    name: str
    rank: int
    policy: SlaPolicy
    by: str


class SupportSlaPolicyDeleted(_Event, tag="support.sla.policy_deleted"):
    policy_id: str
    version: int
    by: str


class SupportSlaPoliciesOrdered(_Event, tag="support.sla.policies_ordered"):
    """The live policies, in matching order (each one's rank is its index)."""

    policy_ids: list[str]
    by: str


# SLA clocks live on their subject's stream (a ticket's, later). One clock is one cycle of one metric: started
# with its due and at-risk instants, updated when a pause moves them (null due while paused), stopped when met.
# The breach timer appends at_risk and breached at those instants, at the seq it read, so each happens once.


class SlaClockStarted(_Event, tag="sla.clock_started"):
    clock_id: str
    metric: str
    due_at: datetime | None
    at_risk_at: datetime | None = None


class SlaClockUpdated(_Event, tag="sla.clock_updated"):
    clock_id: str
    metric: str
    due_at: datetime | None
    at_risk_at: datetime | None = None


class SlaClockStopped(_Event, tag="sla.clock_stopped"):
    clock_id: str
    metric: str


class SlaAtRisk(_Event, tag="sla.at_risk"):
    clock_id: str
    metric: str
    due_at: datetime
    at_risk_at: datetime


class SlaBreached(_Event, tag="sla.breached"):
    clock_id: str
    metric: str
    due_at: datetime
    breached_at: datetime


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


# --- support tickets ----------------------------------------------------------------------------------------
# Each ticket is a stream of its own (`tkt_…`). Its number comes from the tenant's ticket counter stream
# (`tickets:<tenant>`): `support.ticket.numbered` is appended there at the counter's seq in the same
# transaction as the ticket's `support.ticket.created`, so the counter's seq is the number and has no holes.


class SupportTicketNumbered(_Event, tag="support.ticket.numbered"):
    ticket_id: str
    number: int


class SupportTicketCreated(_Event, tag="support.ticket.created"):
    ticket_id: str
    number: int
    display_number: str  # TKT-<year>-<number, 4 digits at least>
    subject: str
    description: str
    customer_id: str
    priority: str
    created_by: str
    category: str | None = None
    tags: list[str] = []
    related_order_id: str | None = None
    session_id: str | None = None
    room_id: str | None = None  # the session's room: its transcript
    attachments: list[dict[str, Any]] = []
    follow_up_of: str | None = None


class SupportTicketUpdated(_Event, tag="support.ticket.updated"):
    """Fields of the ticket changed; `changed` names them, the fields beside it hold their new values."""

    by: str
    changed: list[str]
    status: str | None = None
    priority: str | None = None
    assigned_to: str | None = None
    tags: list[str] = []
    category: str | None = None
    # Why, when not the caller's explicit request: "assigned" (a new ticket assigned opens), "requester_comment"
    # (a customer's comment reopens), "auto_close".
    reason: str | None = None


class SupportTicketCommented(_Event, tag="support.ticket.commented"):
    comment_id: str
    author_id: str
    author_type: Literal["customer", "agent"]
    content: str
    public: bool = True  # a private comment is internal, like a note
    attachments: list[dict[str, Any]] = []


class SupportTicketNoteAdded(_Event, tag="support.ticket.note_added"):
    """An internal note: never shown to customers."""

    note_id: str
    author_id: str
    content: str
    mention_agent_ids: list[str] = []


class SupportTicketEscalated(_Event, tag="support.ticket.escalated"):
    escalation_type: str
    by: str
    priority: str
    reason: str | None = None
    notes: str | None = None  # internal: never shown to the customer


class SupportTicketSlaApplied(_Event, tag="support.ticket.sla_applied"):
    """The SLA policy and calendar versions the ticket's clock runs on from now on (at creation, or re-applied)."""

    policy_id: str
    policy_version: int
    calendar_id: str | None  # None: 24/7
    calendar_version: int | None
    by: str
    reapplied: bool = False


class SupportTicketSlaEvaluated(_Event, tag="support.ticket.sla_evaluated"):
    """The ticket's SLA clock as folded after its latest event (seed 001's `sla`), when it changed."""

    response_due: datetime | None
    resolution_due: datetime | None
    status: str


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
    erased: bool = False  # the file name was erased with the uploader's content; the cleanup removes the objects


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


class MediaLimitsSet(_Event, tag="media.limits_set"):
    """A tenant's own media limits, in its stream `media-limits:<tenant>`; None: the service's default."""

    by: str
    max_bytes: int | None = None
    allowed_types: list[str] | None = None
    quota_bytes: int | None = None


# --- bots ---------------------------------------------------------------------------------------------------
# Each bot has a stream of its own (`bot:<tenant>:<bot_id>`); every event carries the whole configuration,
# so the read model is the last event's. The webhook signing secret never enters the log: an event names it
# by `secret_id`, a row of the bot_secrets table (migration 071), which exports and JetStream never see.


class _BotConfig(_Event):
    bot_id: str
    display_name: str
    triggers: list[str]
    by: str
    webhook_url: str | None = None
    secret_id: str | None = None  # the bot_secrets row that signs its webhook calls
    nats_subject: str | None = None


class BotRegistered(_BotConfig, tag="bot.registered"):
    key_id: str = ""


class BotUpdated(_BotConfig, tag="bot.updated"):
    pass


class BotDeleted(_Event, tag="bot.deleted"):
    bot_id: str
    by: str


Event = (
    RoomCreated | MemberJoined | MemberRemoved | RoomUpdated | MessageSent | MessageEdited | MessageDeleted
    | ReactionAdded | ReactionRemoved | AckRecorded | ReadRecorded | UserBlocked | UserUnblocked
    | PresenceStatusSet
    | NotificationSent
    | SubscriptionAdded | SubscriptionRemoved | DeliveryFailed | DeliveryRetried | DeliveryDiscarded | ContentErased
    | SupportAgentProfileSet | SupportAgentStatusChanged | SupportTeamSaved | SupportDeskSettingsSet
    | SupportSessionAssigned | SupportKbArticleSaved | SupportKbArticleDeleted
    | SupportQuickActionExecuted | SupportQuickActionCompleted | SupportCreditAdded
    | SupportSlaCalendarSaved | SupportSlaCalendarDeleted | SupportSlaPolicySaved | SupportSlaPolicyDeleted
    | SupportSlaPoliciesOrdered | SlaClockStarted | SlaClockUpdated | SlaClockStopped | SlaAtRisk | SlaBreached
    | SupportSessionCreated | SupportSessionHeld | SupportSessionResumed | SupportSessionTransferred
    | SupportSessionEscalated | SupportSessionEnded | SupportSessionRated
    | MediaUploadRequested | MediaConfirmed | MediaRejected | MediaRemoved
    | BotRegistered | BotUpdated | BotDeleted | MediaLimitsSet
    | RoomMuted | RoomUnmuted | RoomArchived | RoomUnarchived | RoomCleared | RoomDeleted
    | SupportTicketNumbered | SupportTicketCreated | SupportTicketUpdated | SupportTicketCommented
    | SupportTicketNoteAdded | SupportTicketEscalated | SupportTicketSlaApplied | SupportTicketSlaEvaluated
)

ROOM_EVENT_TYPES = frozenset({
    "room.created", "member.joined", "member.removed", "room.updated", "message.sent", "message.edited",
    "message.deleted", "reaction.added", "reaction.removed", "room.deleted",
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
                MediaUploadRequested, MediaConfirmed, MediaRejected, MediaRemoved,
                SupportKbArticleSaved, SupportKbArticleDeleted, SupportQuickActionExecuted,
                SupportQuickActionCompleted, SupportCreditAdded,
                BotRegistered, BotUpdated, BotDeleted, MediaLimitsSet,
                RoomMuted, RoomUnmuted, RoomArchived, RoomUnarchived, RoomCleared, RoomDeleted,
                SupportTicketNumbered, SupportTicketCreated, SupportTicketUpdated, SupportTicketCommented,
                SupportTicketNoteAdded, SupportTicketEscalated, SupportTicketSlaApplied, SupportTicketSlaEvaluated,
                SupportSlaCalendarSaved, SupportSlaCalendarDeleted, SupportSlaPolicySaved, SupportSlaPolicyDeleted,
                SupportSlaPoliciesOrdered, SlaClockStarted, SlaClockUpdated, SlaClockStopped, SlaAtRisk, SlaBreached)
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
