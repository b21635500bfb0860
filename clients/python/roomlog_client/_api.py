"""Generated from roomlog's /openapi.json by clients/python/generate.py. Do not edit by hand."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import quote

API_VERSION = "1.0.0"


def _segment(value: str) -> str:
    """A path parameter as one percent-encoded UTF-8 path segment."""
    return quote(value, safe="")


class ErrorBody(TypedDict):
    success: NotRequired[bool]
    error: ErrorDetail


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[str | None]
    room_id: NotRequired[str | None]
    allowed: NotRequired[list[str] | None]


class Health(TypedDict):
    status: Literal["degraded", "ok"]
    uptime: str
    db_writable: bool
    nats_connected: bool
    realtime_ready: bool
    catch_up_behind: NotRequired[dict[str, int]]


class Liveness(TypedDict):
    """The process is up and its event loop answers."""

    status: Literal["ok"]


class Readiness(TypedDict):
    """Whether this instance should get traffic: each check, and `ready` when all of them hold (else 503)."""

    status: Literal["not_ready", "ready"]
    db_writable: bool
    nats_connected: bool
    relay_running: bool
    realtime_ready: bool


class Signup(TypedDict):
    email: str
    password: str
    display_name: str
    tenant_name: NotRequired[str | None]


class SignupResult(TypedDict):
    access_token: str
    refresh_token: str
    token_type: NotRequired[Literal["Bearer"]]
    expires_in: int
    user: AccountsUser
    tenant: TenantInfo


class AccountsUser(TypedDict):
    user_id: str
    email: str | None
    display_name: str
    avatar_url: str | None
    timezone: str | None
    role: str
    created_at: str | None


class TenantInfo(TypedDict):
    tenant_id: str
    name: str


class Login(TypedDict):
    email: str
    password: str


class LoginResult(TypedDict):
    access_token: str
    refresh_token: str
    token_type: NotRequired[Literal["Bearer"]]
    expires_in: int
    user: AccountsUser


class Refresh(TypedDict):
    refresh_token: str


class Tokens(TypedDict):
    access_token: str
    refresh_token: str
    token_type: NotRequired[Literal["Bearer"]]
    expires_in: int


class Success(TypedDict):
    success: NotRequired[Literal[True]]


class Me(TypedDict):
    user: AccountsUser
    tenant: TenantInfo


class UpdateProfile(TypedDict):
    display_name: NotRequired[str]
    avatar_url: NotRequired[str | None]
    timezone: NotRequired[str | None]


class ChangePassword(TypedDict):
    current_password: str
    new_password: str


class CreateRoom(TypedDict):
    type: Literal["channel", "dm", "group"]
    members: NotRequired[list[str]]
    name: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    display_name: NotRequired[str | None]
    description: NotRequired[str | None]
    visibility: NotRequired[Literal["private", "public"] | None]
    settings: NotRequired[RoomSettings | None]


class RoomSettings(TypedDict):
    """A room's settings: `admins` makes it an announcement room, where only its admins post; messages older than
`message_retention_days` are redacted for everyone by the retention job (None keeps them)."""

    who_can_post: NotRequired[Literal["admins", "all_members"]]
    message_retention_days: NotRequired[int | None]


class Room(TypedDict):
    room_id: str
    type: Literal["channel", "dm", "group", "support"]
    unique_key: str | None
    name: str | None
    metadata: dict[str, Any] | None
    last_seq: int
    created_at: str
    created_by: NotRequired[str | None]
    display_name: NotRequired[str | None]
    description: NotRequired[str | None]
    visibility: NotRequired[Literal["private", "public"] | None]
    settings: NotRequired[RoomSettings]
    member_count: NotRequired[int]
    last_message_at: NotRequired[str | None]
    last_message: NotRequired[LastMessage | None]
    read_seq: NotRequired[int]
    unread_count: NotRequired[int]
    mention_count: NotRequired[int]
    is_muted: NotRequired[bool]
    is_archived: NotRequired[bool]
    deleted_at: NotRequired[str | None]


class LastMessage(TypedDict):
    """A room's newest message as it reads now: a deleted one has an empty preview and `deleted: true`."""

    message_id: str
    seq: int
    sender_id: str
    preview: str
    deleted: NotRequired[bool]


class UpdateRoom(TypedDict):
    name: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    display_name: NotRequired[str | None]
    description: NotRequired[str | None]
    settings: NotRequired[RoomSettings]


class Member(TypedDict):
    user_id: str
    role: Literal["admin", "member"]
    joined_at: str
    display_name: NotRequired[str | None]
    avatar_url: NotRequired[str | None]
    status: NotRequired[Literal["away", "dnd", "offline", "online"]]


class AddMembers(TypedDict):
    user_ids: list[str]


class SendMessage(TypedDict):
    content: str
    meta: NotRequired[dict[str, Any] | None]
    client_msg_id: NotRequired[str | None]
    thread_id: NotRequired[str | None]
    type: NotRequired[Literal["file", "image", "system", "text", "voice"]]
    attachments: NotRequired[list[str]]
    mentions: NotRequired[list[str]]


class SendResult(TypedDict):
    message_id: str
    seq: int
    created_at: str


class Message(TypedDict):
    """A message as it reads now: edits applied; a deleted one keeps its seq with empty content."""

    message_id: str
    sender_id: str
    seq: int
    content: str
    meta: dict[str, Any] | None
    created_at: str
    client_msg_id: NotRequired[str | None]
    edited_at: NotRequired[str | None]
    deleted_at: NotRequired[str | None]
    reactions: NotRequired[list[ReactionCount]]
    thread_id: NotRequired[str | None]
    reply_count: NotRequired[int]
    last_reply_at: NotRequired[str | None]
    type: NotRequired[str]
    attachments: NotRequired[list[Attachment]]
    mentions: NotRequired[list[str]]
    forwarded_from: NotRequired[ForwardedFrom | None]


class ReactionCount(TypedDict):
    emoji: str
    count: int
    me: bool


class Attachment(TypedDict):
    """A confirmed upload as a message carries it: the media's facts, never its bytes or a URL."""

    media_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    width: NotRequired[int | None]
    height: NotRequired[int | None]


class ForwardedFrom(TypedDict):
    """Where a forwarded message was forwarded from."""

    room_id: str
    message_id: str


class RoomEvent(TypedDict):
    """One entry of a room's raw log as clients sync it."""

    seq: int
    type: str
    actor: str | None
    created_at: str
    data: dict[str, Any]


class EditMessage(TypedDict):
    content: str


class MessageChange(TypedDict):
    """The answer to an edit or delete: the seq of the event that recorded it."""

    message_id: str
    seq: int
    at: str


class AddReaction(TypedDict):
    emoji: str


class ReactionChange(TypedDict):
    """The answer to adding or removing a reaction; `changed` is false when it already was so (no event)."""

    message_id: str
    emoji: str
    changed: bool
    seq: int | None
    reactions: list[ReactionCount]


class ForwardMessage(TypedDict):
    room_ids: list[str]


class ForwardResult(TypedDict):
    results: list[ForwardTarget]


class ForwardTarget(TypedDict):
    """What happened in one target room: the new message, or the error that room answered."""

    room_id: str
    ok: bool
    message_id: NotRequired[str | None]
    seq: NotRequired[int | None]
    error: NotRequired[dict[str, Any] | None]


class ReactionToggled(TypedDict):
    """The answer to a toggle: whether the caller's reaction is now there (`added`) or was taken back."""

    message_id: str
    emoji: str
    added: bool
    seq: int
    reactions: list[ReactionCount]


class Reactors(TypedDict):
    emoji: str
    count: int
    user_ids: list[str]


class TypingUpdate(TypedDict):
    """POST /rooms/{room_id}/typing: the caller started (true) or stopped (false) typing."""

    typing: NotRequired[bool]


class SyncRequest(TypedDict):
    """POST /sync: the seq the client has of each room it follows (0 for none yet), and events per room."""

    rooms: dict[str, int]
    limit: NotRequired[int]


class SyncResult(TypedDict):
    """The listed rooms the caller belongs to, the rooms it belongs to but did not list, and those it no
longer reads (left, removed, or never its own: each looks the same)."""

    rooms: dict[str, RoomSync]
    joined: list[str]
    left: list[str]


class RoomSync(TypedDict):
    """One room of a sync or poll answer: the events after the client's seq, in seq order."""

    events: list[RoomEvent]
    last_seq: int
    has_more: bool


class PollResult(TypedDict):
    """Every polled room the caller reads: events after its seq (all empty when the poll timed out) and who is
typing; and the polled rooms the caller no longer belongs to (as in SyncResult)."""

    rooms: dict[str, PolledRoom]
    left: list[str]
    timed_out: bool


class PolledRoom(TypedDict):
    """One room of a poll answer: its new events, and who is typing there now."""

    events: list[RoomEvent]
    last_seq: int
    has_more: bool
    typing: list[str]


class Ack(TypedDict):
    room_id: str
    seq: int


class MarkRead(TypedDict):
    seq: int


class ReadState(TypedDict):
    room_id: str
    read_seq: int
    unread_count: int
    mention_count: NotRequired[int]


class Receipt(TypedDict):
    """How far a member has received (acked) and read a room."""

    user_id: str
    delivered_seq: int
    read_seq: int
    read_at: str | None


class UserRoomState(TypedDict):
    """The caller's own state of a room."""

    room_id: str
    is_muted: bool
    is_archived: bool


class Unread(TypedDict):
    rooms: list[UnreadRoom]
    totals: UnreadTotals


class UnreadRoom(TypedDict):
    room_id: str
    unread_count: int
    mention_count: int
    last_seq: int
    read_seq: int
    is_muted: bool


class UnreadTotals(TypedDict):
    unread_count: int
    mention_count: int
    rooms_with_unread: int


class Mention(TypedDict):
    """A message that mentions the caller, and its room."""

    room_id: str
    message: Message


class SearchResults(TypedDict):
    """A page of search hits, newest first; `next_cursor` fetches the next (older) page, null on the last."""

    data: list[SearchHit]
    total: int
    next_cursor: str | None


class SearchHit(TypedDict):
    """One message matching a search, with the fragments of it that match."""

    message: FoundMessage
    highlights: list[str]
    message_id: str
    room_id: str
    seq: int
    sender_id: str
    created_at: str
    snippet: str
    type: NotRequired[str]
    attachments: NotRequired[list[Attachment]]


class FoundMessage(TypedDict):
    """A search hit's message as it reads now (edits applied)."""

    id: str
    room_id: str
    sender_id: str
    seq: int
    content: str
    created_at: str
    edited_at: str | None


class MessagingToken(TypedDict):
    token: str
    expires_in: int
    ws_url: str


class Notify(TypedDict):
    topic: str
    payload: dict[str, Any]
    targets: Targets


class Targets(TypedDict):
    user_ids: NotRequired[list[str]]
    room_id: NotRequired[str | None]
    topic_subscribers: NotRequired[bool]


class NotificationCreated(TypedDict):
    notification_id: str
    created_at: str


class Subscribe(TypedDict):
    topic: str


class Subscription(TypedDict):
    topic: str
    since: str


class UsersUser(TypedDict):
    """A user of the tenant; email and phone are null unless the caller may see them."""

    user_id: str
    display_name: str
    email: str | None
    phone: str | None
    avatar_url: str | None
    role: Literal["admin", "agent", "bot", "customer", "member"]
    created_at: str


class CreateUser(TypedDict):
    display_name: str
    user_id: NotRequired[str | None]
    email: NotRequired[str | None]
    phone: NotRequired[str | None]
    role: NotRequired[Literal["admin", "agent", "bot", "customer", "member"]]
    password: NotRequired[str | None]


class UpdateUser(TypedDict):
    role: NotRequired[Literal["admin", "agent", "bot", "customer", "member"]]
    display_name: NotRequired[str]


class Block(TypedDict):
    user_id: str
    since: str


class SetPresence(TypedDict):
    """`status` "online" returns to the automatic status; "offline" is invisible (shown offline to others)."""

    status: Literal["away", "dnd", "offline", "online"]
    status_text: NotRequired[str | None]
    status_emoji: NotRequired[str | None]
    clear_after_minutes: NotRequired[int | None]


class UserPresence(TypedDict):
    """A user's presence as others see it (an invisible user is offline, last seen when they went invisible)."""

    user_id: str
    status: Literal["away", "dnd", "offline", "online"]
    last_seen: str | None
    status_text: str | None
    status_emoji: str | None


class CreateApiKey(TypedDict):
    name: str
    role: NotRequired[Literal["admin", "agent", "bot", "customer", "member"]]


class CreatedApiKey(TypedDict):
    """A new key; `api_key` is the only copy there will ever be."""

    key_id: str
    api_key: str
    prefix: str
    name: str
    role: Literal["admin", "agent", "bot", "customer", "member"]
    created_at: str


class ApiKey(TypedDict):
    key_id: str
    prefix: str
    name: str
    role: Literal["admin", "agent", "bot", "customer", "member"]
    created_at: str
    revoked_at: str | None


class TenantSettings(TypedDict):
    tenant_id: str
    name: str
    rate_limit: int | None
    send_rate_limit: int | None
    created_at: str


class UpdateTenantSettings(TypedDict):
    rate_limit: NotRequired[int | None]
    send_rate_limit: NotRequired[int | None]


class CreateWebhook(TypedDict):
    url: str
    events: list[Literal["message.offline", "notification", "support.escalation", "support.session_ended", "support.session_started", "support.sla_breach", "support.ticket_created", "support.ticket_updated"]]
    secret: NotRequired[str | None]


class CreatedWebhook(TypedDict):
    """The answer to POST /webhooks: the only response that shows the secret."""

    webhook_id: str
    url: str
    events: list[str]
    secret: str
    created_at: str


class Webhook(TypedDict):
    """A webhook as listed: never its secret."""

    webhook_id: str
    url: str
    events: list[str]
    created_at: str


class DeadLetters(TypedDict):
    failed_messages: list[FailedMessage]
    failed_notifications: list[FailedNotification]


class FailedMessage(TypedDict):
    """A message.offline delivery that ran out of attempts (seed 002), with the `id` to retry or discard it."""

    id: str
    message_id: str | None
    user_id: str
    room_id: str | None
    attempts: int
    last_attempt_at: str
    error: str


class FailedNotification(TypedDict):
    """A notification delivery that ran out of attempts (seed 002), with the `id` to retry or discard it."""

    id: str
    notification_id: str | None
    topic: str | None
    attempts: int
    last_attempt_at: str
    error: str


class Erasure(TypedDict):
    """What an erasure changed: stored events whose content went, the messages they were, JetStream copies."""

    events: int
    messages: int
    jetstream_messages: int


class StartSession(TypedDict):
    customer_id: NotRequired[str | None]
    channel: NotRequired[str]
    initial_message: NotRequired[str | None]
    context: NotRequired[dict[str, Any] | None]
    priority: NotRequired[Literal["high", "low", "normal", "urgent"]]
    skills: NotRequired[list[str]]
    language: NotRequired[str | None]
    team_id: NotRequired[str | None]


class Session(TypedDict):
    session_id: str
    status: Literal["active", "closed", "on_hold", "queued", "resolved", "transferred"]
    channel: str
    priority: Literal["high", "low", "normal", "urgent"]
    room_id: str
    customer: Person
    assigned_agent: Person | None
    queue_position: int
    estimated_wait_minutes: int
    websocket_url: str
    created_at: str
    context: NotRequired[dict[str, Any] | None]
    team_id: NotRequired[str | None]
    resolution: NotRequired[str | None]
    rating: NotRequired[int | None]
    ended_at: NotRequired[str | None]
    duration_seconds: NotRequired[int]


class Person(TypedDict):
    """Who a customer may see of someone: id, name and avatar only."""

    id: str
    name: str
    avatar_url: NotRequired[str | None]


class SessionDetail(TypedDict):
    session_id: str
    status: Literal["active", "closed", "on_hold", "queued", "resolved", "transferred"]
    channel: str
    priority: Literal["high", "low", "normal", "urgent"]
    room_id: str
    customer: Person
    assigned_agent: Person | None
    queue_position: int
    estimated_wait_minutes: int
    websocket_url: str
    created_at: str
    context: NotRequired[dict[str, Any] | None]
    team_id: NotRequired[str | None]
    resolution: NotRequired[str | None]
    rating: NotRequired[int | None]
    ended_at: NotRequired[str | None]
    duration_seconds: NotRequired[int]
    messages: NotRequired[list[SessionMessageView]]


class SessionMessageView(TypedDict):
    id: str
    sender: Literal["agent", "customer", "system"]
    sender_id: str
    content: str
    timestamp: str


class SessionMessage(TypedDict):
    content: str
    type: NotRequired[Literal["text"]]
    attachments: NotRequired[list[dict[str, Any]]]


class SentMessage(TypedDict):
    id: str
    seq: int
    sender: Literal["agent", "customer", "system"]
    timestamp: str


class Transfer(TypedDict):
    target_type: Literal["agent", "team"]
    target_id: str
    reason: NotRequired[str | None]
    notes: NotRequired[str | None]


class Escalate(TypedDict):
    level: str
    reason: NotRequired[str | None]
    urgency: NotRequired[Literal["high", "low", "normal", "urgent"]]


class EndSession(TypedDict):
    resolution: NotRequired[str]
    resolution_notes: NotRequired[str | None]
    tags: NotRequired[list[str]]


class Rating(TypedDict):
    score: int
    comment: NotRequired[str | None]


class SessionRouting(TypedDict):
    session_id: str
    status: Literal["active", "closed", "on_hold", "queued", "resolved", "transferred"]
    assignments: list[RoutingRecord]


class RoutingRecord(TypedDict):
    """One assignment: who got the session under which policy, and why each other agent did not."""

    agent_id: str
    policy_version: str
    assigned_at: str
    waited_seconds: float
    candidates: list[CandidateView]


class CandidateView(TypedDict):
    agent_id: str
    reasons: list[str]
    spare: int


class AgentStatus(TypedDict):
    agent_id: str
    name: str
    status: Literal["available", "away", "busy", "offline"]
    active_sessions: int
    max_sessions: int
    skills: list[str]
    languages: list[str]
    teams: list[str]
    metrics_today: MetricsToday
    reason: NotRequired[str | None]
    return_time: NotRequired[str | None]
    connected: NotRequired[bool | None]


class MetricsToday(TypedDict):
    sessions_handled: int
    avg_response_time_seconds: float | None
    satisfaction_score: float | None
    resolution_rate: float | None


class AgentProfile(TypedDict):
    max_sessions: int
    skills: NotRequired[list[str]]
    languages: NotRequired[list[str]]
    teams: NotRequired[list[str]]


class SetAgentStatus(TypedDict):
    status: Literal["available", "away", "offline"]
    reason: NotRequired[str | None]
    return_time: NotRequired[str | None]


class CreateTeam(TypedDict):
    name: str
    team_id: NotRequired[str | None]
    members: NotRequired[list[str]]
    required_skills: NotRequired[list[str]]
    escalation_level: NotRequired[str | None]


class Team(TypedDict):
    team_id: str
    name: str
    members: list[str]
    required_skills: list[str]
    escalation_level: str | None
    created_at: str


class UpdateTeam(TypedDict):
    name: NotRequired[str]
    members: NotRequired[list[str]]
    required_skills: NotRequired[list[str]]
    escalation_level: NotRequired[str | None]


class ReplayRequest(TypedDict):
    policy: Literal["round_robin", "spare_capacity"]


class ReplayReport(TypedDict):
    """What routing the tenant's log again under `policy` gives: waits and assignments per agent."""

    policy_version: str
    sessions: int
    assigned: int
    wait_p50_seconds: float
    wait_max_seconds: float
    per_agent: list[AgentReplay]
    same_as_recorded: int


class AgentReplay(TypedDict):
    agent_id: str
    assignments: int


class DeskSettings(TypedDict):
    """The tenant's desk settings; `inherited` while the tenant never set them (the service's defaults apply)."""

    refuse_without_agents: bool
    inherited: bool
    ticket_auto_close_days: NotRequired[int]
    set_by: NotRequired[str | None]
    updated_at: NotRequired[str | None]


class DeskSettingsBody(TypedDict):
    refuse_without_agents: bool
    ticket_auto_close_days: NotRequired[int]


class CreateArticle(TypedDict):
    title: str
    body: str
    category: NotRequired[str | None]
    tags: NotRequired[list[str]]
    status: NotRequired[Literal["archived", "draft", "published"]]
    locale: NotRequired[str]
    url: NotRequired[str | None]


class Article(TypedDict):
    """A knowledge-base article; `version` counts its changes (the seq of its stream)."""

    id: str
    title: str
    body: str
    category: str | None
    tags: list[str]
    status: Literal["archived", "draft", "published"]
    locale: str
    version: int
    url: str
    created_by: str
    updated_by: str
    created_at: str
    updated_at: str


class ArticleList(TypedDict):
    """A page of articles, most recently changed first; `total` counts every match."""

    articles: list[Article]
    total: int
    limit: int
    offset: int


class UpdateArticle(TypedDict):
    """Only the fields given change; `category: null` clears the category."""

    title: NotRequired[str]
    body: NotRequired[str]
    category: NotRequired[str | None]
    tags: NotRequired[list[str]]
    status: NotRequired[Literal["archived", "draft", "published"]]
    locale: NotRequired[str]
    url: NotRequired[str | None]
    expected_version: NotRequired[int]


class KbSearchResult(TypedDict):
    """Matching published articles, best first, and a reply an agent could send: the opening of the best
match (its first paragraph, at most 500 characters) — null when nothing matches."""

    results: list[ArticleHit]
    suggested_response: str | None
    query: str


class ArticleHit(TypedDict):
    """A search result: `excerpt` is HTML-escaped text around the matches, each in <mark>…</mark>;
`relevance_score` is the text rank mapped into 0..1 (rank / (rank + 1)): higher is better."""

    id: str
    title: str
    excerpt: str
    category: str | None
    relevance_score: float
    url: str


class SuggestArticles(TypedDict):
    """What to find articles for: the given `message`, else the customer's latest messages in the session, or the
ticket's subject, description and latest customer comment (a session or a ticket, not both)."""

    session_id: NotRequired[str | None]
    ticket_id: NotRequired[str | None]
    message: NotRequired[str | None]
    limit: NotRequired[int]


class QuickActions(TypedDict):
    actions: list[QuickAction]


class QuickAction(TypedDict):
    """An action agents can run on a session: a built-in one (acting inside roomlog) or the tenant's own
(`kind: integration`, a signed call to its endpoint). `permissions` are the roles that may run it."""

    id: str
    name: str
    description: str
    required_context: list[str]
    permissions: list[str]
    kind: Literal["builtin", "integration"]
    targets: list[str]


class RegisterQuickAction(TypedDict):
    id: str
    name: str
    url: str
    description: NotRequired[str]
    required_context: NotRequired[list[str]]
    permissions: NotRequired[list[Literal["admin", "agent"]]]
    secret: NotRequired[str | None]


class RegisteredQuickAction(TypedDict):
    """The registered action and its signing secret, shown only in this answer."""

    action: QuickAction
    url: str
    secret: str


class ExecuteQuickAction(TypedDict):
    """What to run the action on: exactly one of `session_id` and `ticket_id`."""

    session_id: NotRequired[str | None]
    ticket_id: NotRequired[str | None]
    context: NotRequired[dict[str, Any]]
    dry_run: NotRequired[bool]
    idempotency_key: NotRequired[str | None]


class Execution(TypedDict):
    """What an execute did (or, with `dry_run`, would do): `changes` in words, `result` from the action."""

    success: bool
    execution_id: str | None
    action_id: str
    dry_run: bool
    changes: list[str]
    result: dict[str, Any]
    message: str


class CustomerCredit(TypedDict):
    """A customer's store credit: the balance per currency (decimal strings) and every entry, newest first."""

    customer_id: str
    balances: dict[str, str]
    entries: list[CreditEntry]


class CreditEntry(TypedDict):
    amount: str
    currency: str
    reason: str | None
    by: str
    at: str
    execution_id: str | None


class CreateTicket(TypedDict):
    subject: str
    description: str
    customer_id: NotRequired[str | None]
    priority: NotRequired[Literal["high", "low", "normal", "urgent"]]
    category: NotRequired[str | None]
    tags: NotRequired[list[str]]
    related_order_id: NotRequired[str | None]
    session_id: NotRequired[str | None]
    attachments: NotRequired[list[dict[str, Any]]]
    follow_up_of: NotRequired[str | None]


class TicketDetail(TypedDict):
    id: str
    number: str
    subject: str
    status: Literal["closed", "new", "on_hold", "open", "pending", "solved"]
    priority: Literal["high", "low", "normal", "urgent"]
    category: str | None
    tags: list[str]
    customer: Person
    assigned_to: Person | None
    created_at: str
    updated_at: str
    first_response_at: NotRequired[str | None]
    solved_at: NotRequired[str | None]
    sla: NotRequired[SlaView | None]
    description: str
    attachments: NotRequired[list[dict[str, Any]]]
    comments: NotRequired[list[Comment]]
    activities: NotRequired[list[Activity]]
    notes: NotRequired[list[NoteView]]
    related: NotRequired[Related]


class SlaView(TypedDict):
    """The ticket's SLA clock as last folded (and recorded by the breach timer); null while no policy applies."""

    response_due: str | None
    resolution_due: str | None
    status: Literal["at_risk", "breached", "paused", "within_sla"]
    policy_id: str
    policy_version: int
    calendar_id: NotRequired[str | None]
    calendar_version: NotRequired[int | None]


class Comment(TypedDict):
    id: str
    author: Author
    content: str
    public: bool
    attachments: NotRequired[list[dict[str, Any]]]
    timestamp: str


class Author(TypedDict):
    type: Literal["agent", "customer"]
    id: str
    name: str


class Activity(TypedDict):
    """One entry of the ticket's timeline, from one of its events."""

    action: Literal["assigned", "closed", "commented", "created", "escalated", "note_added", "replied", "sla_applied", "sla_at_risk", "sla_breached", "status_changed", "updated"]
    by: str
    timestamp: str
    seq: int
    status: NotRequired[str | None]
    reason: NotRequired[str | None]
    changed: NotRequired[list[str] | None]
    agent: NotRequired[str | None]
    escalation_type: NotRequired[str | None]
    metric: NotRequired[str | None]
    due_at: NotRequired[str | None]
    policy_id: NotRequired[str | None]
    policy_version: NotRequired[int | None]


class NoteView(TypedDict):
    id: str
    author: Author
    content: str
    mention_agent_ids: list[str]
    timestamp: str


class Related(TypedDict):
    order_id: NotRequired[str | None]
    session_id: NotRequired[str | None]
    room_id: NotRequired[str | None]
    follow_up_of: NotRequired[str | None]
    follow_ups: NotRequired[list[str]]


class TicketPage(TypedDict):
    data: list[Ticket]
    total: int
    limit: int
    offset: int
    total_is_estimate: NotRequired[bool]


class Ticket(TypedDict):
    id: str
    number: str
    subject: str
    status: Literal["closed", "new", "on_hold", "open", "pending", "solved"]
    priority: Literal["high", "low", "normal", "urgent"]
    category: str | None
    tags: list[str]
    customer: Person
    assigned_to: Person | None
    created_at: str
    updated_at: str
    first_response_at: NotRequired[str | None]
    solved_at: NotRequired[str | None]
    sla: NotRequired[SlaView | None]


class UpdateTicket(TypedDict):
    status: NotRequired[Literal["closed", "new", "on_hold", "open", "pending", "solved"]]
    priority: NotRequired[Literal["high", "low", "normal", "urgent"]]
    assigned_to: NotRequired[str | None]
    tags: NotRequired[list[str]]
    category: NotRequired[str | None]


class AddComment(TypedDict):
    content: str
    public: NotRequired[bool]
    attachments: NotRequired[list[dict[str, Any]]]


class AddNote(TypedDict):
    content: str
    mention_agent_ids: NotRequired[list[str]]


class EscalateTicket(TypedDict):
    escalation_type: str
    reason: NotRequired[str | None]
    notes: NotRequired[str | None]
    urgency: NotRequired[Literal["high", "low", "normal", "urgent"]]


class TicketFromSession(TypedDict):
    subject: NotRequired[str | None]
    description: NotRequired[str | None]
    priority: NotRequired[Literal["high", "low", "normal", "urgent"] | None]
    category: NotRequired[str | None]
    tags: NotRequired[list[str]]


class CalendarView(TypedDict):
    calendar_id: str
    name: str
    version: int
    timezone: str
    periods: list[WorkingPeriod]
    holidays: list[str]
    updated_by: str
    updated_at: str


class WorkingPeriod(TypedDict):
    """Working time on one weekday, local wall-clock time, start inclusive and end exclusive."""

    day: Literal["fri", "mon", "sat", "sun", "thu", "tue", "wed"]
    start: str
    end: str


class CalendarBody(TypedDict):
    """POST/PUT /support/sla/calendars: the whole calendar (a PUT restates it as a new version)."""

    name: str
    timezone: str
    periods: list[WorkingPeriod]
    holidays: NotRequired[list[str]]
    holidays_ics: NotRequired[str | None]


class PolicyView(TypedDict):
    policy_id: str
    name: str
    version: int
    rank: int
    conditions: PolicyConditions
    targets: PolicyTargets
    calendar_id: str | None
    at_risk_percent: int
    updated_by: str
    updated_at: str


class PolicyConditions(TypedDict):
    """What a ticket must have for a policy to apply; an empty list matches anything."""

    priority: NotRequired[list[str]]
    category: NotRequired[list[str]]
    channel: NotRequired[list[str]]


class PolicyTargets(TypedDict):
    """Targets in (business) minutes; next_response is optional."""

    first_response_minutes: int
    resolution_minutes: int
    next_response_minutes: NotRequired[int | None]


class PolicyBody(TypedDict):
    """POST/PUT /support/sla/policies: the whole policy; `calendar_id` null means 24/7."""

    name: str
    conditions: NotRequired[PolicyConditions]
    targets: PolicyTargets
    calendar_id: NotRequired[str | None]
    at_risk_percent: NotRequired[int]


class PolicyOrder(TypedDict):
    """PUT /support/sla/policy-order: every live policy id, once each, in matching order."""

    policy_ids: list[str]


class SlaMatchBody(TypedDict):
    """POST /support/sla/match: a ticket's attributes."""

    priority: NotRequired[str | None]
    category: NotRequired[str | None]
    channel: NotRequired[str | None]


class SlaMatch(TypedDict):
    """The policy version (and calendar version, null for 24/7) a ticket with those attributes gets now."""

    policy_id: str
    policy_version: int
    calendar_id: str | None
    calendar_version: int | None


class SupportAnalytics(TypedDict):
    period: Period
    summary: Summary
    by_channel: list[ChannelFigures]
    by_category: list[CategoryFigures]
    by_agent: list[AgentFigures]
    sla_compliance: SlaCompliance
    series: list[SeriesPoint]


class Period(TypedDict):
    """The local dates reported on (both included), in `timezone`."""

    start: str
    end: str
    timezone: str
    group_by: str


class Summary(TypedDict):
    """Figures over every session and ticket created in the period (README "Support analytics" defines them)."""

    total_sessions: int
    total_tickets: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction_score: float | None
    satisfaction_percent: float | None
    first_contact_resolution: float | None
    resolved: int
    ratings: int


class ChannelFigures(TypedDict):
    channel: str
    sessions: int
    tickets: int
    satisfaction: float | None
    avg_response_time_seconds: float | None


class CategoryFigures(TypedDict):
    category: str
    count: int
    avg_resolution_min: float | None


class AgentFigures(TypedDict):
    agent_id: str
    sessions: int
    tickets: int
    resolved: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction: float | None
    first_contact_resolution: float | None


class SlaCompliance(TypedDict):
    """Percent of ended SLA clocks met (null without any)."""

    response_sla_met: float | None
    resolution_sla_met: float | None
    response_clocks: int
    resolution_clocks: int


class SeriesPoint(TypedDict):
    """One bucket (hour, day or week of local time, starting at `start`) that has sessions or tickets."""

    start: str
    sessions: int
    tickets: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction_score: float | None


class RequestUpload(TypedDict):
    filename: str
    content_type: str
    size: int
    room_id: NotRequired[str | None]


class UploadUrl(TypedDict):
    """Where to PUT the bytes: the presigned URL, the method and the headers it was signed with."""

    media_id: str
    upload_url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: str


class ConfirmUpload(TypedDict):
    sha256: NotRequired[str | None]


class Media(TypedDict):
    media_id: str
    filename: str
    content_type: str
    size: int
    status: Literal["confirmed", "pending"]
    created_at: str
    uploaded_by: str
    sha256: NotRequired[str | None]
    width: NotRequired[int | None]
    height: NotRequired[int | None]
    duration: NotRequired[float | None]
    cdn_url: NotRequired[str | None]
    thumbnail_url: NotRequired[str | None]
    room_id: NotRequired[str | None]


class CreateBot(TypedDict):
    user_id: str
    display_name: str
    delivery: BotDelivery
    triggers: list[Literal["all_messages", "dm", "mention"]]


class BotDelivery(TypedDict):
    """Either `{webhook_url, secret}` (signed HTTP calls) or `{nats_subject}` (a bot inside the cluster)."""

    webhook_url: NotRequired[str | None]
    secret: NotRequired[str | None]
    nats_subject: NotRequired[str | None]


class CreatedBot(TypedDict):
    """The answer to POST /bots: the only response that shows the bot's API key."""

    bot_id: str
    user_id: str
    display_name: str
    delivery: BotDeliveryView
    triggers: list[str]
    created_at: str
    updated_at: str
    api_key: str
    key_id: str
    secret: NotRequired[str | None]


class BotDeliveryView(TypedDict):
    """Where a bot's deliveries go (never the secret)."""

    webhook_url: NotRequired[str | None]
    nats_subject: NotRequired[str | None]


class Bot(TypedDict):
    bot_id: str
    user_id: str
    display_name: str
    delivery: BotDeliveryView
    triggers: list[str]
    created_at: str
    updated_at: str


class UpdateBot(TypedDict):
    display_name: NotRequired[str]
    delivery: NotRequired[BotDelivery]
    triggers: NotRequired[list[Literal["all_messages", "dm", "mention"]]]


class MediaLimitsView(TypedDict):
    """The limits that apply to a tenant's uploads, and which of them are its own (the rest: the defaults)."""

    tenant_id: str
    max_bytes: int
    allowed_types: list[str]
    quota_bytes: int
    overridden: list[Literal["allowed_types", "max_bytes", "quota_bytes"]]
    updated_at: str | None


class SetMediaLimits(TypedDict):
    """A tenant's own limits; a field left out or null follows the service's default (ROOMLOG_MEDIA_*)."""

    max_bytes: NotRequired[int | None]
    allowed_types: NotRequired[list[str] | None]
    quota_bytes: NotRequired[int | None]


class Operations:
    """One method per route of the API; `_call` (the transport) is supplied by RoomlogClient."""

    async def _call(self, method: str, path: str, *, query: dict[str, Any] | None, body: Any) -> Any:
        raise NotImplementedError

    async def get_health(self) -> Health:
        """GET /health: Uptime, database writability and NATS connectivity (503: no writes)"""
        return cast("Health", await self._call("GET", "/health", query=None, body=None))

    async def get_health_live(self) -> Liveness:
        """GET /health/live: Liveness: the process is up"""
        return cast("Liveness", await self._call("GET", "/health/live", query=None, body=None))

    async def get_health_ready(self) -> Readiness:
        """GET /health/ready: Readiness: database writable, NATS connected, relay and real-time delivery running (503 otherwise)"""
        return cast("Readiness", await self._call("GET", "/health/ready", query=None, body=None))

    async def get_metrics(self) -> Any:
        """GET /metrics: Prometheus metrics in the text exposition format (404 when off or served on ROOMLOG_METRICS_PORT)"""
        return cast("Any", await self._call("GET", "/metrics", query=None, body=None))

    async def post_auth_signup(self, body: Signup) -> SignupResult:
        """POST /auth/signup: Create an account and its tenant (the account is the tenant's admin)"""
        return cast("SignupResult", await self._call("POST", "/auth/signup", query=None, body=body))

    async def post_auth_login(self, body: Login) -> LoginResult:
        """POST /auth/login: Exchange email and password for an access JWT and a refresh token"""
        return cast("LoginResult", await self._call("POST", "/auth/login", query=None, body=body))

    async def post_auth_refresh(self, body: Refresh) -> Tokens:
        """POST /auth/refresh: Spend a refresh token for new tokens; reusing a spent one revokes its session"""
        return cast("Tokens", await self._call("POST", "/auth/refresh", query=None, body=body))

    async def post_auth_logout(self) -> Success:
        """POST /auth/logout: End the current session (bearer token only)"""
        return cast("Success", await self._call("POST", "/auth/logout", query=None, body=None))

    async def get_auth_me(self) -> Me:
        """GET /auth/me: The authenticated user and their tenant"""
        return cast("Me", await self._call("GET", "/auth/me", query=None, body=None))

    async def patch_auth_profile(self, body: UpdateProfile) -> AccountsUser:
        """PATCH /auth/profile: Update display name, avatar URL or time zone (bearer only)"""
        return cast("AccountsUser", await self._call("PATCH", "/auth/profile", query=None, body=body))

    async def post_auth_change_password(self, body: ChangePassword) -> Success:
        """POST /auth/change-password: Change the password; the caller's other sessions are revoked (bearer only)"""
        return cast("Success", await self._call("POST", "/auth/change-password", query=None, body=body))

    async def post_rooms(self, body: CreateRoom) -> Room:
        """POST /rooms: Create a room; the caller becomes its admin"""
        return cast("Room", await self._call("POST", "/rooms", query=None, body=body))

    async def get_rooms(self, *, limit: int | None = None, offset: int | None = None, cursor: str | None = None, type: Literal["dm", "group", "channel", "support"] | None = None, archived: Literal["true", "false"] | None = None, muted: Literal["true", "false"] | None = None, discover: Literal["public"] | None = None) -> list[Room]:
        """GET /rooms: The caller's inbox: rooms by last activity, newest first (X-Has-More, X-Next-Cursor headers page on)"""
        return cast("list[Room]", await self._call("GET", "/rooms", query={"limit": limit, "offset": offset, "cursor": cursor, "type": type, "archived": archived, "muted": muted, "discover": discover}, body=None))

    async def post_rooms_room_id_join(self, room_id: str) -> Room:
        """POST /rooms/{room_id}/join: Join a public channel (again: no change)"""
        return cast("Room", await self._call("POST", f"/rooms/{_segment(room_id)}/join", query=None, body=None))

    async def get_rooms_room_id(self, room_id: str) -> Room:
        """GET /rooms/{room_id}: One room"""
        return cast("Room", await self._call("GET", f"/rooms/{_segment(room_id)}", query=None, body=None))

    async def patch_rooms_room_id(self, room_id: str, body: UpdateRoom) -> Room:
        """PATCH /rooms/{room_id}: Rename a room or change its metadata (room admins)"""
        return cast("Room", await self._call("PATCH", f"/rooms/{_segment(room_id)}", query=None, body=body))

    async def delete_rooms_room_id(self, room_id: str, *, scope: Literal["for_me", "for_everyone"] | None = None) -> UserRoomState:
        """DELETE /rooms/{room_id}: scope=for_me: delete the room's history for yourself up to its last_seq; hidden until a new message. scope=for_everyone (room admins; either member of a DM): end the room for all, content redacted"""
        return cast("UserRoomState", await self._call("DELETE", f"/rooms/{_segment(room_id)}", query={"scope": scope}, body=None))

    async def get_rooms_room_id_members(self, room_id: str) -> list[Member]:
        """GET /rooms/{room_id}/members: Active members of a room"""
        return cast("list[Member]", await self._call("GET", f"/rooms/{_segment(room_id)}/members", query=None, body=None))

    async def post_rooms_room_id_members(self, room_id: str, body: AddMembers) -> list[Member]:
        """POST /rooms/{room_id}/members: Add members (room admins); returns all members"""
        return cast("list[Member]", await self._call("POST", f"/rooms/{_segment(room_id)}/members", query=None, body=body))

    async def delete_rooms_room_id_members_user_id(self, room_id: str, user_id: str) -> Success:
        """DELETE /rooms/{room_id}/members/{user_id}: Remove a member (room admins) or leave (yourself)"""
        return cast("Success", await self._call("DELETE", f"/rooms/{_segment(room_id)}/members/{_segment(user_id)}", query=None, body=None))

    async def post_rooms_room_id_messages(self, room_id: str, body: SendMessage) -> SendResult:
        """POST /rooms/{room_id}/messages: Send a message (or a reply, with thread_id); a repeated client_msg_id returns the first result"""
        return cast("SendResult", await self._call("POST", f"/rooms/{_segment(room_id)}/messages", query=None, body=body))

    async def get_rooms_room_id_messages(self, room_id: str, *, after_seq: int | None = None, before_seq: int | None = None, limit: int | None = None, thread_id: str | None = None) -> list[Message]:
        """GET /rooms/{room_id}/messages: Messages of a room in seq order"""
        return cast("list[Message]", await self._call("GET", f"/rooms/{_segment(room_id)}/messages", query={"after_seq": after_seq, "before_seq": before_seq, "limit": limit, "thread_id": thread_id}, body=None))

    async def get_rooms_room_id_events(self, room_id: str, *, after_seq: int | None = None, limit: int | None = None) -> list[RoomEvent]:
        """GET /rooms/{room_id}/events: The raw room log after a seq, every event type"""
        return cast("list[RoomEvent]", await self._call("GET", f"/rooms/{_segment(room_id)}/events", query={"after_seq": after_seq, "limit": limit}, body=None))

    async def get_rooms_room_id_messages_message_id(self, room_id: str, message_id: str) -> Message:
        """GET /rooms/{room_id}/messages/{message_id}: One message as it reads now, with its reactions"""
        return cast("Message", await self._call("GET", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}", query=None, body=None))

    async def patch_rooms_room_id_messages_message_id(self, room_id: str, message_id: str, body: EditMessage) -> MessageChange:
        """PATCH /rooms/{room_id}/messages/{message_id}: Edit a message you sent (a message.edited event)"""
        return cast("MessageChange", await self._call("PATCH", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}", query=None, body=body))

    async def delete_rooms_room_id_messages_message_id(self, room_id: str, message_id: str) -> MessageChange:
        """DELETE /rooms/{room_id}/messages/{message_id}: Delete a message: your own, or anyone's as a room or tenant admin (a message.deleted event)"""
        return cast("MessageChange", await self._call("DELETE", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}", query=None, body=None))

    async def post_rooms_room_id_messages_message_id_reactions(self, room_id: str, message_id: str, body: AddReaction) -> ReactionChange:
        """POST /rooms/{room_id}/messages/{message_id}/reactions: React to a message; reacting again with the same emoji changes nothing"""
        return cast("ReactionChange", await self._call("POST", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}/reactions", query=None, body=body))

    async def get_rooms_room_id_messages_message_id_reactions(self, room_id: str, message_id: str) -> list[Reactors]:
        """GET /rooms/{room_id}/messages/{message_id}/reactions: Who reacted to a message, by emoji"""
        return cast("list[Reactors]", await self._call("GET", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}/reactions", query=None, body=None))

    async def post_rooms_room_id_messages_message_id_forward(self, room_id: str, message_id: str, body: ForwardMessage) -> ForwardResult:
        """POST /rooms/{room_id}/messages/{message_id}/forward: Forward a message to rooms you may post to: a new message in each, with forwarded_from; the answer says per room what happened"""
        return cast("ForwardResult", await self._call("POST", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}/forward", query=None, body=body))

    async def post_rooms_room_id_messages_message_id_reactions_toggle(self, room_id: str, message_id: str, body: AddReaction) -> ReactionToggled:
        """POST /rooms/{room_id}/messages/{message_id}/reactions/toggle: Add your reaction if it is not there, else take it back"""
        return cast("ReactionToggled", await self._call("POST", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}/reactions/toggle", query=None, body=body))

    async def delete_rooms_room_id_messages_message_id_reactions_emoji(self, room_id: str, message_id: str, emoji: str) -> ReactionChange:
        """DELETE /rooms/{room_id}/messages/{message_id}/reactions/{emoji}: Take your reaction back; removing one you did not make changes nothing"""
        return cast("ReactionChange", await self._call("DELETE", f"/rooms/{_segment(room_id)}/messages/{_segment(message_id)}/reactions/{_segment(emoji)}", query=None, body=None))

    async def post_rooms_room_id_typing(self, room_id: str, body: TypingUpdate) -> Success:
        """POST /rooms/{room_id}/typing: Tell the room the caller is typing (it expires by itself after a few seconds) or stopped"""
        return cast("Success", await self._call("POST", f"/rooms/{_segment(room_id)}/typing", query=None, body=body))

    async def post_sync(self, body: SyncRequest) -> SyncResult:
        """POST /sync: Events after the client's seq in many rooms at once (redacted as /events), plus the rooms the caller joined but did not list and the listed ones it no longer reads"""
        return cast("SyncResult", await self._call("POST", "/sync", query=None, body=body))

    async def get_poll(self, *, rooms: str | None = None, timeout: int | None = None, limit: int | None = None) -> PollResult:
        """GET /poll: Long-poll: answers as soon as a listed room has events after its seq (or at the timeout, empty), with who is typing in each room"""
        return cast("PollResult", await self._call("GET", "/poll", query={"rooms": rooms, "timeout": timeout, "limit": limit}, body=None))

    async def post_acks(self, body: Ack) -> Success:
        """POST /acks: Confirm delivery of a room up to a seq (never moves backwards)"""
        return cast("Success", await self._call("POST", "/acks", query=None, body=body))

    async def post_rooms_room_id_read(self, room_id: str, body: MarkRead) -> ReadState:
        """POST /rooms/{room_id}/read: Mark a room read up to a seq (never moves backwards; implies delivery); returns what is still unread"""
        return cast("ReadState", await self._call("POST", f"/rooms/{_segment(room_id)}/read", query=None, body=body))

    async def get_rooms_room_id_receipts(self, room_id: str) -> list[Receipt]:
        """GET /rooms/{room_id}/receipts: How far each member has received and read the room"""
        return cast("list[Receipt]", await self._call("GET", f"/rooms/{_segment(room_id)}/receipts", query=None, body=None))

    async def post_rooms_room_id_mute(self, room_id: str) -> UserRoomState:
        """POST /rooms/{room_id}/mute: Mute a room for yourself: no offline webhooks but mentions"""
        return cast("UserRoomState", await self._call("POST", f"/rooms/{_segment(room_id)}/mute", query=None, body=None))

    async def delete_rooms_room_id_mute(self, room_id: str) -> UserRoomState:
        """DELETE /rooms/{room_id}/mute: Unmute a room for yourself"""
        return cast("UserRoomState", await self._call("DELETE", f"/rooms/{_segment(room_id)}/mute", query=None, body=None))

    async def post_rooms_room_id_archive(self, room_id: str) -> UserRoomState:
        """POST /rooms/{room_id}/archive: Archive a room for yourself: hidden from the default inbox until a new message (unless muted)"""
        return cast("UserRoomState", await self._call("POST", f"/rooms/{_segment(room_id)}/archive", query=None, body=None))

    async def delete_rooms_room_id_archive(self, room_id: str) -> UserRoomState:
        """DELETE /rooms/{room_id}/archive: Un-archive a room for yourself"""
        return cast("UserRoomState", await self._call("DELETE", f"/rooms/{_segment(room_id)}/archive", query=None, body=None))

    async def get_unread(self) -> Unread:
        """GET /unread: Unread and mention counts of each of your rooms, with totals"""
        return cast("Unread", await self._call("GET", "/unread", query=None, body=None))

    async def get_mentions(self, *, limit: int | None = None) -> list[Mention]:
        """GET /mentions: Messages of others that mention you (by id, @room or @here), newest first (X-Has-More header)"""
        return cast("list[Mention]", await self._call("GET", "/mentions", query={"limit": limit}, body=None))

    async def get_search_messages(self, *, q: str | None = None, room_id: str | None = None, from_user_id: str | None = None, after: str | None = None, before: str | None = None, cursor: str | None = None, limit: int | None = None) -> SearchResults:
        """GET /search/messages: Messages of the caller's rooms matching the words, newest first, filtered by room, sender and time, with the total and a cursor (indexed a moment after sending)"""
        return cast("SearchResults", await self._call("GET", "/search/messages", query={"q": q, "room_id": room_id, "from_user_id": from_user_id, "after": after, "before": before, "cursor": cursor, "limit": limit}, body=None))

    async def post_tokens(self) -> MessagingToken:
        """POST /tokens: A short-lived token for the WebSocket (/ws?token=...)"""
        return cast("MessagingToken", await self._call("POST", "/tokens", query=None, body=None))

    async def get_messaging_token(self) -> MessagingToken:
        """GET /messaging/token: The same as POST /tokens (seed 004 spelling)"""
        return cast("MessagingToken", await self._call("GET", "/messaging/token", query=None, body=None))

    async def post_notify(self, body: Notify) -> NotificationCreated:
        """POST /notify: Notify users, a room's members and/or a topic's subscribers"""
        return cast("NotificationCreated", await self._call("POST", "/notify", query=None, body=body))

    async def post_subscriptions(self, body: Subscribe) -> Success:
        """POST /subscriptions: Subscribe the caller to a topic"""
        return cast("Success", await self._call("POST", "/subscriptions", query=None, body=body))

    async def get_subscriptions(self) -> list[Subscription]:
        """GET /subscriptions: The caller's topic subscriptions"""
        return cast("list[Subscription]", await self._call("GET", "/subscriptions", query=None, body=None))

    async def delete_subscriptions_topic(self, topic: str) -> Success:
        """DELETE /subscriptions/{topic}: Unsubscribe the caller from a topic"""
        return cast("Success", await self._call("DELETE", f"/subscriptions/{_segment(topic)}", query=None, body=None))

    async def get_users(self, *, limit: int | None = None, offset: int | None = None) -> list[UsersUser]:
        """GET /users: The caller's tenant's users (email and phone for admins and oneself)"""
        return cast("list[UsersUser]", await self._call("GET", "/users", query={"limit": limit, "offset": offset}, body=None))

    async def post_users(self, body: CreateUser) -> UsersUser:
        """POST /users: Create or invite a user of the tenant (tenant admins)"""
        return cast("UsersUser", await self._call("POST", "/users", query=None, body=body))

    async def get_users_search(self, *, q: str | None = None, limit: int | None = None) -> list[UsersUser]:
        """GET /users/search: Find users by id, name, email or phone (query parameter q, 1-100 chars)"""
        return cast("list[UsersUser]", await self._call("GET", "/users/search", query={"q": q, "limit": limit}, body=None))

    async def patch_users_user_id(self, user_id: str, body: UpdateUser) -> UsersUser:
        """PATCH /users/{user_id}: Change a user's role or display name (tenant admins)"""
        return cast("UsersUser", await self._call("PATCH", f"/users/{_segment(user_id)}", query=None, body=body))

    async def post_users_user_id_block(self, user_id: str) -> Success:
        """POST /users/{user_id}/block: Block a user: they can no longer open a DM with you or add you to rooms"""
        return cast("Success", await self._call("POST", f"/users/{_segment(user_id)}/block", query=None, body=None))

    async def delete_users_user_id_block(self, user_id: str) -> Success:
        """DELETE /users/{user_id}/block: Lift a block (idempotent)"""
        return cast("Success", await self._call("DELETE", f"/users/{_segment(user_id)}/block", query=None, body=None))

    async def get_blocks(self) -> list[Block]:
        """GET /blocks: The users the caller has blocked, most recent first"""
        return cast("list[Block]", await self._call("GET", "/blocks", query=None, body=None))

    async def put_presence(self, body: SetPresence) -> UserPresence:
        """PUT /presence: Choose a status: away, dnd or offline (invisible) win over the automatic one until online is chosen or clear_after_minutes runs out (text and emoji with it); returns the presence others now see"""
        return cast("UserPresence", await self._call("PUT", "/presence", query=None, body=body))

    async def get_presence(self, *, user_ids: str | None = None, room_id: str | None = None) -> list[UserPresence]:
        """GET /presence: Presence of the named users of the tenant, or of a room's members (query user_ids or room_id)"""
        return cast("list[UserPresence]", await self._call("GET", "/presence", query={"user_ids": user_ids, "room_id": room_id}, body=None))

    async def get_presence_online(self) -> list[UserPresence]:
        """GET /presence/online: The tenant's users active within the last 2 minutes (invisible ones are not listed)"""
        return cast("list[UserPresence]", await self._call("GET", "/presence/online", query=None, body=None))

    async def post_api_keys(self, body: CreateApiKey) -> CreatedApiKey:
        """POST /api-keys: Create an API key (tenant admins); the key is shown only in this response"""
        return cast("CreatedApiKey", await self._call("POST", "/api-keys", query=None, body=body))

    async def get_api_keys(self) -> list[ApiKey]:
        """GET /api-keys: The tenant's API keys: prefix, name, role and dates, never the key"""
        return cast("list[ApiKey]", await self._call("GET", "/api-keys", query=None, body=None))

    async def delete_api_keys_key_id(self, key_id: str) -> Success:
        """DELETE /api-keys/{key_id}: Revoke an API key (tenant admins)"""
        return cast("Success", await self._call("DELETE", f"/api-keys/{_segment(key_id)}", query=None, body=None))

    async def get_admin_tenants_tenant_id(self, tenant_id: str) -> TenantSettings:
        """GET /admin/tenants/{tenant_id}: A tenant's settings (platform admin only)"""
        return cast("TenantSettings", await self._call("GET", f"/admin/tenants/{_segment(tenant_id)}", query=None, body=None))

    async def patch_admin_tenants_tenant_id(self, tenant_id: str, body: UpdateTenantSettings) -> TenantSettings:
        """PATCH /admin/tenants/{tenant_id}: Change a tenant's rate limits: 0 = unlimited, null = the default (platform admin only)"""
        return cast("TenantSettings", await self._call("PATCH", f"/admin/tenants/{_segment(tenant_id)}", query=None, body=body))

    async def post_webhooks(self, body: CreateWebhook) -> CreatedWebhook:
        """POST /webhooks: Register a webhook (tenant admins); the signing secret is shown only in this response"""
        return cast("CreatedWebhook", await self._call("POST", "/webhooks", query=None, body=body))

    async def get_webhooks(self) -> list[Webhook]:
        """GET /webhooks: The tenant's webhooks, without their secrets (tenant admins)"""
        return cast("list[Webhook]", await self._call("GET", "/webhooks", query=None, body=None))

    async def delete_webhooks_webhook_id(self, webhook_id: str) -> Success:
        """DELETE /webhooks/{webhook_id}: Delete a webhook; deliveries still queued for it are dropped (tenant admins)"""
        return cast("Success", await self._call("DELETE", f"/webhooks/{_segment(webhook_id)}", query=None, body=None))

    async def get_admin_dead_letters(self, *, tenant_id: str | None = None, limit: int | None = None) -> DeadLetters:
        """GET /admin/dead-letters: Failed deliveries still open (tenant admins: their tenant; the platform admin: tenant_id)"""
        return cast("DeadLetters", await self._call("GET", "/admin/dead-letters", query={"tenant_id": tenant_id, "limit": limit}, body=None))

    async def post_admin_dead_letters_id_retry(self, id: str, *, tenant_id: str | None = None) -> Success:
        """POST /admin/dead-letters/{id}/retry: Queue a failed delivery again (same X-Roomlog-Delivery id); it leaves the dead letters"""
        return cast("Success", await self._call("POST", f"/admin/dead-letters/{_segment(id)}/retry", query={"tenant_id": tenant_id}, body=None))

    async def delete_admin_dead_letters_id(self, id: str, *, tenant_id: str | None = None) -> Success:
        """DELETE /admin/dead-letters/{id}: Discard a failed delivery"""
        return cast("Success", await self._call("DELETE", f"/admin/dead-letters/{_segment(id)}", query={"tenant_id": tenant_id}, body=None))

    async def post_users_user_id_erase(self, user_id: str) -> Erasure:
        """POST /users/{user_id}/erase: Erase the content of every message the user wrote (tenant admins): from the log, the read models, search and JetStream; the messages keep their seqs, and a content.erased event records the erasure"""
        return cast("Erasure", await self._call("POST", f"/users/{_segment(user_id)}/erase", query=None, body=None))

    async def post_support_sessions(self, body: StartSession) -> Session:
        """POST /support/sessions: Start a support session: it opens a support room and is routed at once (or queued)"""
        return cast("Session", await self._call("POST", "/support/sessions", query=None, body=body))

    async def get_support_sessions(self, *, status: str | None = None, agent_id: str | None = None, customer_id: str | None = None, team_id: str | None = None, limit: int | None = None, offset: int | None = None) -> list[Session]:
        """GET /support/sessions: Support sessions, filtered (a customer's own only)"""
        return cast("list[Session]", await self._call("GET", "/support/sessions", query={"status": status, "agent_id": agent_id, "customer_id": customer_id, "team_id": team_id, "limit": limit, "offset": offset}, body=None))

    async def get_support_sessions_session_id(self, session_id: str) -> SessionDetail:
        """GET /support/sessions/{session_id}: One support session with its messages"""
        return cast("SessionDetail", await self._call("GET", f"/support/sessions/{_segment(session_id)}", query=None, body=None))

    async def post_support_sessions_session_id_messages(self, session_id: str, body: SessionMessage) -> SentMessage:
        """POST /support/sessions/{session_id}/messages: Write in the session (through its room)"""
        return cast("SentMessage", await self._call("POST", f"/support/sessions/{_segment(session_id)}/messages", query=None, body=body))

    async def post_support_sessions_session_id_hold(self, session_id: str) -> Session:
        """POST /support/sessions/{session_id}/hold: Put an active session on hold (agents)"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/hold", query=None, body=None))

    async def post_support_sessions_session_id_resume(self, session_id: str) -> Session:
        """POST /support/sessions/{session_id}/resume: Resume a session on hold (agents)"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/resume", query=None, body=None))

    async def post_support_sessions_session_id_transfer(self, session_id: str, body: Transfer) -> Session:
        """POST /support/sessions/{session_id}/transfer: Transfer to an agent or a team (agents); notes stay internal"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/transfer", query=None, body=body))

    async def post_support_sessions_session_id_escalate(self, session_id: str, body: Escalate) -> Session:
        """POST /support/sessions/{session_id}/escalate: Escalate: raise the priority and re-queue for the level's escalation team (agents)"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/escalate", query=None, body=body))

    async def post_support_sessions_session_id_end(self, session_id: str, body: EndSession) -> Session:
        """POST /support/sessions/{session_id}/end: End the session (its customer, agents)"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/end", query=None, body=body))

    async def post_support_sessions_session_id_rating(self, session_id: str, body: Rating) -> Session:
        """POST /support/sessions/{session_id}/rating: Rate an ended session, once (its customer)"""
        return cast("Session", await self._call("POST", f"/support/sessions/{_segment(session_id)}/rating", query=None, body=body))

    async def get_support_sessions_session_id_routing(self, session_id: str) -> SessionRouting:
        """GET /support/sessions/{session_id}/routing: Why the session went where it did: policy version and every candidate with its reasons"""
        return cast("SessionRouting", await self._call("GET", f"/support/sessions/{_segment(session_id)}/routing", query=None, body=None))

    async def get_support_agents(self) -> list[AgentStatus]:
        """GET /support/agents: The desk's agents with status, load and today's metrics"""
        return cast("list[AgentStatus]", await self._call("GET", "/support/agents", query=None, body=None))

    async def put_support_agents_agent_id(self, agent_id: str, body: AgentProfile) -> AgentStatus:
        """PUT /support/agents/{agent_id}: Make a tenant agent part of the desk or change their profile (admins)"""
        return cast("AgentStatus", await self._call("PUT", f"/support/agents/{_segment(agent_id)}", query=None, body=body))

    async def get_support_agents_agent_id_status(self, agent_id: str) -> AgentStatus:
        """GET /support/agents/{agent_id}/status: An agent's status, load and today's metrics"""
        return cast("AgentStatus", await self._call("GET", f"/support/agents/{_segment(agent_id)}/status", query=None, body=None))

    async def put_support_agents_agent_id_status(self, agent_id: str, body: SetAgentStatus) -> AgentStatus:
        """PUT /support/agents/{agent_id}/status: Set an agent's status (the agent, or admins)"""
        return cast("AgentStatus", await self._call("PUT", f"/support/agents/{_segment(agent_id)}/status", query=None, body=body))

    async def post_support_teams(self, body: CreateTeam) -> Team:
        """POST /support/teams: Create a team (admins)"""
        return cast("Team", await self._call("POST", "/support/teams", query=None, body=body))

    async def get_support_teams(self) -> list[Team]:
        """GET /support/teams: The tenant's teams"""
        return cast("list[Team]", await self._call("GET", "/support/teams", query=None, body=None))

    async def get_support_teams_team_id(self, team_id: str) -> Team:
        """GET /support/teams/{team_id}: One team"""
        return cast("Team", await self._call("GET", f"/support/teams/{_segment(team_id)}", query=None, body=None))

    async def patch_support_teams_team_id(self, team_id: str, body: UpdateTeam) -> Team:
        """PATCH /support/teams/{team_id}: Change a team (admins)"""
        return cast("Team", await self._call("PATCH", f"/support/teams/{_segment(team_id)}", query=None, body=body))

    async def post_support_routing_replay(self, body: ReplayRequest) -> ReplayReport:
        """POST /support/routing/replay: Route the tenant's desk history again under a policy: waits and assignments per agent (admins)"""
        return cast("ReplayReport", await self._call("POST", "/support/routing/replay", query=None, body=body))

    async def get_support_settings(self) -> DeskSettings:
        """GET /support/settings: The desk's settings (the service's defaults while the tenant never set them)"""
        return cast("DeskSettings", await self._call("GET", "/support/settings", query=None, body=None))

    async def put_support_settings(self, body: DeskSettingsBody) -> DeskSettings:
        """PUT /support/settings: Set the desk's settings: refuse new sessions rather than queue them while no agent could take them (admins)"""
        return cast("DeskSettings", await self._call("PUT", "/support/settings", query=None, body=body))

    async def post_support_kb_articles(self, body: CreateArticle) -> Article:
        """POST /support/kb/articles: Write a knowledge-base article (agents and admins)"""
        return cast("Article", await self._call("POST", "/support/kb/articles", query=None, body=body))

    async def get_support_kb_articles(self, *, category: str | None = None, status: str | None = None, locale: str | None = None, limit: int | None = None, offset: int | None = None) -> ArticleList:
        """GET /support/kb/articles: Knowledge-base articles, most recently changed first, with the total (customers: published only)"""
        return cast("ArticleList", await self._call("GET", "/support/kb/articles", query={"category": category, "status": status, "locale": locale, "limit": limit, "offset": offset}, body=None))

    async def get_support_kb_articles_article_id(self, article_id: str) -> Article:
        """GET /support/kb/articles/{article_id}: One article (customers: published ones only)"""
        return cast("Article", await self._call("GET", f"/support/kb/articles/{_segment(article_id)}", query=None, body=None))

    async def put_support_kb_articles_article_id(self, article_id: str, body: UpdateArticle) -> Article:
        """PUT /support/kb/articles/{article_id}: Change an article: the fields given (agents and admins); expected_version refuses a lost update"""
        return cast("Article", await self._call("PUT", f"/support/kb/articles/{_segment(article_id)}", query=None, body=body))

    async def delete_support_kb_articles_article_id(self, article_id: str) -> Success:
        """DELETE /support/kb/articles/{article_id}: Delete an article (agents and admins)"""
        return cast("Success", await self._call("DELETE", f"/support/kb/articles/{_segment(article_id)}", query=None, body=None))

    async def get_support_kb_search(self, *, q: str | None = None, category: str | None = None, locale: str | None = None, limit: int | None = None) -> KbSearchResult:
        """GET /support/kb/search: Published articles matching a query, best first, with excerpts, relevance 0-1 and a suggested reply"""
        return cast("KbSearchResult", await self._call("GET", "/support/kb/search", query={"q": q, "category": category, "locale": locale, "limit": limit}, body=None))

    async def post_support_kb_suggest(self, body: SuggestArticles) -> KbSearchResult:
        """POST /support/kb/suggest: Articles answering a customer's message, or the session customer's latest messages (agents, admins)"""
        return cast("KbSearchResult", await self._call("POST", "/support/kb/suggest", query=None, body=body))

    async def get_support_quick_actions(self) -> QuickActions:
        """GET /support/quick-actions: The quick actions of the desk: built-in ones and the tenant's own (agents and admins)"""
        return cast("QuickActions", await self._call("GET", "/support/quick-actions", query=None, body=None))

    async def post_support_quick_actions(self, body: RegisterQuickAction) -> RegisteredQuickAction:
        """POST /support/quick-actions: Add an action that calls the tenant's endpoint with a signed request (tenant admins); the secret is shown only here"""
        return cast("RegisteredQuickAction", await self._call("POST", "/support/quick-actions", query=None, body=body))

    async def delete_support_quick_actions_action_id(self, action_id: str) -> Success:
        """DELETE /support/quick-actions/{action_id}: Remove one of the tenant's actions"""
        return cast("Success", await self._call("DELETE", f"/support/quick-actions/{_segment(action_id)}", query=None, body=None))

    async def post_support_quick_actions_action_id_execute(self, action_id: str, body: ExecuteQuickAction) -> Execution:
        """POST /support/quick-actions/{action_id}/execute: Run an action on a session or a ticket (dry_run: only say what it would change); an Idempotency-Key runs it once"""
        return cast("Execution", await self._call("POST", f"/support/quick-actions/{_segment(action_id)}/execute", query=None, body=body))

    async def get_support_customers_customer_id_credit(self, customer_id: str) -> CustomerCredit:
        """GET /support/customers/{customer_id}/credit: A customer's store credit: balances and entries (the desk; a customer its own)"""
        return cast("CustomerCredit", await self._call("GET", f"/support/customers/{_segment(customer_id)}/credit", query=None, body=None))

    async def post_support_tickets(self, body: CreateTicket) -> TicketDetail:
        """POST /support/tickets: File a ticket with the tenant's next gapless number (a customer its own; staff name the customer)"""
        return cast("TicketDetail", await self._call("POST", "/support/tickets", query=None, body=body))

    async def get_support_tickets(self, *, status: str | None = None, priority: str | None = None, assigned_to: str | None = None, customer_id: str | None = None, category: str | None = None, tag: str | None = None, sla_status: str | None = None, q: str | None = None, limit: int | None = None, offset: int | None = None) -> TicketPage:
        """GET /support/tickets: Tickets matching every filter, newest first, with the total (a customer's own only)"""
        return cast("TicketPage", await self._call("GET", "/support/tickets", query={"status": status, "priority": priority, "assigned_to": assigned_to, "customer_id": customer_id, "category": category, "tag": tag, "sla_status": sla_status, "q": q, "limit": limit, "offset": offset}, body=None))

    async def get_support_tickets_ticket_id(self, ticket_id: str) -> TicketDetail:
        """GET /support/tickets/{ticket_id}: One ticket with comments, timeline and related items (internal notes for staff only)"""
        return cast("TicketDetail", await self._call("GET", f"/support/tickets/{_segment(ticket_id)}", query=None, body=None))

    async def put_support_tickets_ticket_id(self, ticket_id: str, body: UpdateTicket) -> TicketDetail:
        """PUT /support/tickets/{ticket_id}: Change status, priority, assignee, tags or category under the status rules (agents)"""
        return cast("TicketDetail", await self._call("PUT", f"/support/tickets/{_segment(ticket_id)}", query=None, body=body))

    async def post_support_tickets_ticket_id_comments(self, ticket_id: str, body: AddComment) -> TicketDetail:
        """POST /support/tickets/{ticket_id}/comments: Comment (the ticket's customer, publicly, which reopens a pending, on-hold or solved ticket; agents)"""
        return cast("TicketDetail", await self._call("POST", f"/support/tickets/{_segment(ticket_id)}/comments", query=None, body=body))

    async def post_support_tickets_ticket_id_notes(self, ticket_id: str, body: AddNote) -> TicketDetail:
        """POST /support/tickets/{ticket_id}/notes: An internal note, never shown to customers; mentioned agents are notified (agents)"""
        return cast("TicketDetail", await self._call("POST", f"/support/tickets/{_segment(ticket_id)}/notes", query=None, body=body))

    async def post_support_tickets_ticket_id_escalate(self, ticket_id: str, body: EscalateTicket) -> TicketDetail:
        """POST /support/tickets/{ticket_id}/escalate: Escalate the ticket: type, reason, internal notes; the priority rises to the urgency (agents)"""
        return cast("TicketDetail", await self._call("POST", f"/support/tickets/{_segment(ticket_id)}/escalate", query=None, body=body))

    async def post_support_tickets_ticket_id_sla_reapply(self, ticket_id: str) -> TicketDetail:
        """POST /support/tickets/{ticket_id}/sla/reapply: Match the tenant's current SLA policies again and run the ticket's clock on those versions (agents)"""
        return cast("TicketDetail", await self._call("POST", f"/support/tickets/{_segment(ticket_id)}/sla/reapply", query=None, body=None))

    async def post_support_sessions_session_id_ticket(self, session_id: str, body: TicketFromSession) -> TicketDetail:
        """POST /support/sessions/{session_id}/ticket: Turn a support session into a ticket that links the session and its transcript (agents)"""
        return cast("TicketDetail", await self._call("POST", f"/support/sessions/{_segment(session_id)}/ticket", query=None, body=body))

    async def get_support_sla_calendars(self) -> list[CalendarView]:
        """GET /support/sla/calendars: The tenant's business-hours calendars"""
        return cast("list[CalendarView]", await self._call("GET", "/support/sla/calendars", query=None, body=None))

    async def post_support_sla_calendars(self, body: CalendarBody) -> CalendarView:
        """POST /support/sla/calendars: Create a business-hours calendar: IANA timezone, working periods per weekday, holidays (admins)"""
        return cast("CalendarView", await self._call("POST", "/support/sla/calendars", query=None, body=body))

    async def put_support_sla_calendars_calendar_id(self, calendar_id: str, body: CalendarBody) -> CalendarView:
        """PUT /support/sla/calendars/{calendar_id}: Save a calendar's next version (admins)"""
        return cast("CalendarView", await self._call("PUT", f"/support/sla/calendars/{_segment(calendar_id)}", query=None, body=body))

    async def delete_support_sla_calendars_calendar_id(self, calendar_id: str) -> Success:
        """DELETE /support/sla/calendars/{calendar_id}: Delete a calendar no policy uses (admins)"""
        return cast("Success", await self._call("DELETE", f"/support/sla/calendars/{_segment(calendar_id)}", query=None, body=None))

    async def get_support_sla_policies(self) -> list[PolicyView]:
        """GET /support/sla/policies: The tenant's SLA policies in matching order"""
        return cast("list[PolicyView]", await self._call("GET", "/support/sla/policies", query=None, body=None))

    async def post_support_sla_policies(self, body: PolicyBody) -> PolicyView:
        """POST /support/sla/policies: Create an SLA policy, matched after the existing ones (admins)"""
        return cast("PolicyView", await self._call("POST", "/support/sla/policies", query=None, body=body))

    async def put_support_sla_policies_policy_id(self, policy_id: str, body: PolicyBody) -> PolicyView:
        """PUT /support/sla/policies/{policy_id}: Save a policy's next version (admins)"""
        return cast("PolicyView", await self._call("PUT", f"/support/sla/policies/{_segment(policy_id)}", query=None, body=body))

    async def delete_support_sla_policies_policy_id(self, policy_id: str) -> Success:
        """DELETE /support/sla/policies/{policy_id}: Delete a policy (admins)"""
        return cast("Success", await self._call("DELETE", f"/support/sla/policies/{_segment(policy_id)}", query=None, body=None))

    async def put_support_sla_policy_order(self, body: PolicyOrder) -> list[PolicyView]:
        """PUT /support/sla/policy-order: Set the order policies are matched in: every policy id once (admins)"""
        return cast("list[PolicyView]", await self._call("PUT", "/support/sla/policy-order", query=None, body=body))

    async def post_support_sla_match(self, body: SlaMatchBody) -> SlaMatch:
        """POST /support/sla/match: The policy and calendar versions a ticket with these attributes gets: the first match in order"""
        return cast("SlaMatch", await self._call("POST", "/support/sla/match", query=None, body=body))

    async def get_support_analytics(self, *, start_date: str | None = None, end_date: str | None = None, group_by: Literal["hour", "day", "week"] | None = None, timezone: str | None = None) -> SupportAnalytics:
        """GET /support/analytics: The desk's figures for sessions and tickets created in a period: summary, by channel, category and agent, SLA compliance and a series (agents and admins; from a projection a moment behind the log)"""
        return cast("SupportAnalytics", await self._call("GET", "/support/analytics", query={"start_date": start_date, "end_date": end_date, "group_by": group_by, "timezone": timezone}, body=None))

    async def post_media_upload_url(self, body: RequestUpload) -> UploadUrl:
        """POST /media/upload-url: A presigned PUT for one file of this size and content type, valid for a few minutes"""
        return cast("UploadUrl", await self._call("POST", "/media/upload-url", query=None, body=body))

    async def post_media_media_id_confirm(self, media_id: str, body: ConfirmUpload) -> Media:
        """POST /media/{media_id}/confirm: Check the uploaded bytes (size, sha256, real content type, image size and thumbnail) and record them; a wrong upload is removed"""
        return cast("Media", await self._call("POST", f"/media/{_segment(media_id)}/confirm", query=None, body=body))

    async def get_media_media_id(self, media_id: str) -> Media:
        """GET /media/{media_id}: Media metadata with short-lived download URLs (the uploader, and members of rooms it is attached in)"""
        return cast("Media", await self._call("GET", f"/media/{_segment(media_id)}", query=None, body=None))

    async def post_bots(self, body: CreateBot) -> CreatedBot:
        """POST /bots: Register a bot (tenant admins): a user with the role bot and an API key acting only for it, shown only in this response; it is told about the messages that trigger it"""
        return cast("CreatedBot", await self._call("POST", "/bots", query=None, body=body))

    async def get_bots(self) -> list[Bot]:
        """GET /bots: The tenant's bots, without their secrets (tenant admins)"""
        return cast("list[Bot]", await self._call("GET", "/bots", query=None, body=None))

    async def get_bots_bot_id(self, bot_id: str) -> Bot:
        """GET /bots/{bot_id}: One bot (tenant admins)"""
        return cast("Bot", await self._call("GET", f"/bots/{_segment(bot_id)}", query=None, body=None))

    async def patch_bots_bot_id(self, bot_id: str, body: UpdateBot) -> Bot:
        """PATCH /bots/{bot_id}: Change a bot's name, delivery or triggers (tenant admins)"""
        return cast("Bot", await self._call("PATCH", f"/bots/{_segment(bot_id)}", query=None, body=body))

    async def delete_bots_bot_id(self, bot_id: str) -> Success:
        """DELETE /bots/{bot_id}: Delete a bot: it gets no more deliveries and its key and reply tokens stop working (tenant admins)"""
        return cast("Success", await self._call("DELETE", f"/bots/{_segment(bot_id)}", query=None, body=None))

    async def get_admin_tenants_tenant_id_media_limits(self, tenant_id: str) -> MediaLimitsView:
        """GET /admin/tenants/{tenant_id}/media-limits: The media limits that apply to a tenant's uploads, and which are its own (platform admin only)"""
        return cast("MediaLimitsView", await self._call("GET", f"/admin/tenants/{_segment(tenant_id)}/media-limits", query=None, body=None))

    async def put_admin_tenants_tenant_id_media_limits(self, tenant_id: str, body: SetMediaLimits) -> MediaLimitsView:
        """PUT /admin/tenants/{tenant_id}/media-limits: Set a tenant's own media limits; a field left out or null follows the service's default (platform admin only)"""
        return cast("MediaLimitsView", await self._call("PUT", f"/admin/tenants/{_segment(tenant_id)}/media-limits", query=None, body=body))

    async def get_asyncapi_json(self) -> Any:
        """GET /asyncapi.json: The WebSocket protocol of /ws (AsyncAPI 3.0)"""
        return cast("Any", await self._call("GET", "/asyncapi.json", query=None, body=None))

    async def get_console(self) -> Any:
        """GET /console/: The web console: its page"""
        return cast("Any", await self._call("GET", "/console/", query=None, body=None))

    async def get_console_app_js(self) -> Any:
        """GET /console/app.js: The web console: app.js"""
        return cast("Any", await self._call("GET", "/console/app.js", query=None, body=None))

    async def get_console_style_css(self) -> Any:
        """GET /console/style.css: The web console: style.css"""
        return cast("Any", await self._call("GET", "/console/style.css", query=None, body=None))

    async def get_console_sdk_roomlog_js(self) -> Any:
        """GET /console/sdk/roomlog.js: The web console: sdk/roomlog.js"""
        return cast("Any", await self._call("GET", "/console/sdk/roomlog.js", query=None, body=None))

    async def get_console_sdk_api_gen_js(self) -> Any:
        """GET /console/sdk/api.gen.js: The web console: sdk/api.gen.js"""
        return cast("Any", await self._call("GET", "/console/sdk/api.gen.js", query=None, body=None))

    async def get_openapi_json(self) -> Any:
        """GET /openapi.json: This API description (OpenAPI 3.1)"""
        return cast("Any", await self._call("GET", "/openapi.json", query=None, body=None))
