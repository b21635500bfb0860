"""The support desk's request and response bodies (seed 001's shapes, under /support)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.api import Content, UserId, _Request

Priority = Literal["low", "normal", "high", "urgent"]
AgentStatusValue = Literal["available", "busy", "away", "offline"]
SettableAgentStatus = Literal["available", "away", "offline"]  # busy is derived: at capacity
SessionStatusValue = Literal["queued", "active", "on_hold", "transferred", "resolved", "closed"]
# Short labels: skills, languages, tags, channels, levels, resolutions. No NUL (PostgreSQL text).
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00\s]+$")]
Labels = Annotated[list[Label], msgspec.Meta(max_length=50)]
Note = Annotated[str, msgspec.Meta(max_length=4000, pattern=r"^[^\x00]*$")]
TeamName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
TeamId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class StartSession(_Request):
    customer_id: UserId | None = None  # a customer starts their own; agents and admins name the customer
    channel: Label = "chat"
    initial_message: Content | None = None
    context: dict[str, Any] | None = None
    priority: Priority = "normal"
    skills: Labels = []
    language: Label | None = None
    team_id: TeamId | None = None


class SessionMessage(_Request):
    content: Content
    type: Literal["text"] = "text"
    attachments: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=10)] = []


class Transfer(_Request):
    target_type: Literal["agent", "team"]
    target_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00\s/]+$")]
    reason: Note | None = None
    notes: Note | None = None


class EndSession(_Request):
    resolution: Label = "resolved"
    resolution_notes: Note | None = None
    tags: Labels = []


class Escalate(_Request):
    level: Label
    reason: Note | None = None
    urgency: Literal["low", "normal", "high", "urgent"] = "high"


class Rating(_Request):
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Note | None = None


class AgentProfile(_Request):
    max_sessions: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    skills: Labels = []
    languages: Labels = []
    teams: Annotated[list[TeamId], msgspec.Meta(max_length=50)] = []


class SetAgentStatus(_Request):
    status: SettableAgentStatus
    reason: Note | None = None
    return_time: datetime | None = None


class CreateTeam(_Request):
    name: TeamName
    team_id: TeamId | None = None
    members: Annotated[list[UserId], msgspec.Meta(max_length=1000)] = []
    required_skills: Labels = []
    escalation_level: Label | None = None  # escalations of this level route to this team


class UpdateTeam(_Request):
    name: TeamName | UnsetType = UNSET
    members: Annotated[list[UserId], msgspec.Meta(max_length=1000)] | UnsetType = UNSET
    required_skills: Labels | UnsetType = UNSET
    escalation_level: Label | UnsetType | None = UNSET


class ReplayRequest(_Request):
    policy: Literal["spare_capacity", "round_robin"]


class DeskSettingsBody(_Request):
    refuse_without_agents: bool
    ticket_auto_close_days: Annotated[int, msgspec.Meta(ge=1, le=28)] = 4  # solved tickets close after this


class Person(msgspec.Struct):
    """Who a customer may see of someone: id, name and avatar only."""

    id: str
    name: str
    avatar_url: str | None = None


class Session(msgspec.Struct, kw_only=True):
    session_id: str
    status: SessionStatusValue
    channel: str
    priority: Priority
    room_id: str
    customer: Person
    assigned_agent: Person | None
    queue_position: int
    estimated_wait_minutes: int
    websocket_url: str
    created_at: datetime
    context: dict[str, Any] | None = None
    team_id: str | None = None
    resolution: str | None = None
    rating: int | None = None
    ended_at: datetime | None = None
    duration_seconds: int = 0


class SessionMessageView(msgspec.Struct):
    id: str
    sender: Literal["customer", "agent", "system"]
    sender_id: str
    content: str
    timestamp: datetime


class SessionDetail(Session, kw_only=True):
    messages: list[SessionMessageView] = []


class SentMessage(msgspec.Struct):
    id: str
    seq: int
    sender: Literal["customer", "agent", "system"]
    timestamp: datetime


class CandidateView(msgspec.Struct):
    agent_id: str
    reasons: list[str]
    spare: int


class RoutingRecord(msgspec.Struct):
    """One assignment: who got the session under which policy, and why each other agent did not."""

    agent_id: str
    policy_version: str
    assigned_at: datetime
    waited_seconds: float
    candidates: list[CandidateView]


class SessionRouting(msgspec.Struct):
    session_id: str
    status: SessionStatusValue
    assignments: list[RoutingRecord]


class MetricsToday(msgspec.Struct):
    sessions_handled: int
    avg_response_time_seconds: float | None
    satisfaction_score: float | None
    resolution_rate: float | None


class AgentStatus(msgspec.Struct, kw_only=True):
    agent_id: str
    name: str
    status: AgentStatusValue
    active_sessions: int
    max_sessions: int
    skills: list[str]
    languages: list[str]
    teams: list[str]
    metrics_today: MetricsToday
    reason: str | None = None
    return_time: datetime | None = None
    # Only when routing requires a live connection: whether the agent counts as connected (else null).
    connected: bool | None = None


class Team(msgspec.Struct):
    team_id: str
    name: str
    members: list[str]
    required_skills: list[str]
    escalation_level: str | None
    created_at: datetime


class DeskSettings(msgspec.Struct, kw_only=True):
    """The tenant's desk settings; `inherited` while the tenant never set them (the service's defaults apply)."""

    refuse_without_agents: bool
    inherited: bool
    ticket_auto_close_days: int = 4
    set_by: str | None = None
    updated_at: datetime | None = None


class AgentReplay(msgspec.Struct):
    agent_id: str
    assignments: int


class ReplayReport(msgspec.Struct):
    """What routing the tenant's log again under `policy` gives: waits and assignments per agent."""

    policy_version: str
    sessions: int
    assigned: int
    wait_p50_seconds: float
    wait_max_seconds: float
    per_agent: list[AgentReplay]
    same_as_recorded: int


class SupportFrame(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A WebSocket frame of the desk: agents hear of sessions assigned to them, queued and transferred;
    a customer hears its place in the queue and wait estimate as they change (`support.queue`)."""

    type: Literal["support.session.assigned", "support.session.queued", "support.session.transferred",
                  "support.queue"]
    session_id: str
    status: SessionStatusValue
    room_id: str | None = None
    agent_id: str | None = None
    queue_position: int | None = None
    estimated_wait_minutes: int | None = None


# --- the knowledge base ------------------------------------------------------------------------------------

ArticleStatus = Literal["draft", "published", "archived"]
ArticleTitle = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=r"^[^\x00]*\S[^\x00]*$")]
ArticleText = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000, pattern=r"^[^\x00]*\S[^\x00]*$")]
# A BCP 47-ish language tag: en, en-US, pt-BR, zh-Hant.
Locale = Annotated[str, msgspec.Meta(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")]
# Where the article is published for customers (a help centre); without one, `url` is the API path.
HelpUrl = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://[^\s\x00]+$")]
SearchText = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=r"^[^\x00]*\S[^\x00]*$")]


class CreateArticle(_Request):
    title: ArticleTitle
    body: ArticleText
    category: Label | None = None
    tags: Labels = []
    status: ArticleStatus = "draft"
    locale: Locale = "en"
    url: HelpUrl | None = None


class UpdateArticle(_Request):
    """Only the fields given change; `category: null` clears the category."""

    title: ArticleTitle | UnsetType = UNSET
    body: ArticleText | UnsetType = UNSET
    category: Label | UnsetType | None = UNSET
    tags: Labels | UnsetType = UNSET
    status: ArticleStatus | UnsetType = UNSET
    locale: Locale | UnsetType = UNSET
    url: HelpUrl | UnsetType | None = UNSET
    # Refuse the change (409 SEQ_CONFLICT) unless the article is still at this version: no lost edits.
    expected_version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


class Article(msgspec.Struct, kw_only=True):
    """A knowledge-base article; `version` counts its changes (the seq of its stream)."""

    id: str
    title: str
    body: str
    category: str | None
    tags: list[str]
    status: ArticleStatus
    locale: str
    version: int
    url: str
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class ArticleHit(msgspec.Struct, kw_only=True):
    """A search result: `excerpt` is HTML-escaped text around the matches, each in <mark>…</mark>;
    `relevance_score` is the text rank mapped into 0..1 (rank / (rank + 1)): higher is better."""

    id: str
    title: str
    excerpt: str
    category: str | None
    relevance_score: float
    url: str


class KbSearchResult(msgspec.Struct, kw_only=True):
    """Matching published articles, best first, and a reply an agent could send: the opening of the best
    match (its first paragraph, at most 500 characters) — null when nothing matches."""

    results: list[ArticleHit]
    suggested_response: str | None
    query: str


class SuggestArticles(_Request):
    """What to find articles for: the given `message`, else the customer's latest messages in the session, or the
    ticket's subject, description and latest customer comment (a session or a ticket, not both)."""

    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    ticket_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    message: SearchText | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class ArticleList(msgspec.Struct, kw_only=True):
    """A page of articles, most recently changed first; `total` counts every match."""

    articles: list[Article]
    total: int
    limit: int
    offset: int


# --- quick actions -------------------------------------------------------------------------------------------

ActionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
DeskRole = Literal["agent", "admin"]


class QuickAction(msgspec.Struct, kw_only=True):
    """An action agents can run on a session: a built-in one (acting inside roomlog) or the tenant's own
    (`kind: integration`, a signed call to its endpoint). `permissions` are the roles that may run it."""

    id: str
    name: str
    description: str
    required_context: list[str]
    permissions: list[str]
    kind: Literal["builtin", "integration"]
    targets: list[str]


class QuickActions(msgspec.Struct):
    actions: list[QuickAction]


class RegisterQuickAction(_Request):
    id: ActionId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    description: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[^\x00]*$")] = ""
    required_context: Labels = []
    permissions: Annotated[list[DeskRole], msgspec.Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["agent", "admin"])
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=256, pattern=r"^[^\x00\s]+$")] | None = None


class RegisteredQuickAction(msgspec.Struct, kw_only=True):
    """The registered action and its signing secret, shown only in this answer."""

    action: QuickAction
    url: str
    secret: str


class ExecuteQuickAction(_Request):
    """What to run the action on: exactly one of `session_id` and `ticket_id`."""

    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    ticket_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    context: dict[str, Any] = {}
    dry_run: bool = False
    # Or the Idempotency-Key header: an execute repeated with the same key runs once and answers the same.
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None


class Execution(msgspec.Struct, kw_only=True):
    """What an execute did (or, with `dry_run`, would do): `changes` in words, `result` from the action."""

    success: bool
    execution_id: str | None
    action_id: str
    dry_run: bool
    changes: list[str]
    result: dict[str, Any]
    message: str


class CreditEntry(msgspec.Struct, kw_only=True):
    amount: str
    currency: str
    reason: str | None
    by: str
    at: datetime
    execution_id: str | None


class CustomerCredit(msgspec.Struct, kw_only=True):
    """A customer's store credit: the balance per currency (decimal strings) and every entry, newest first."""

    customer_id: str
    balances: dict[str, str]
    entries: list[CreditEntry]
