"""Support tickets' request and response bodies (seed 001 "Tickets", under /support)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.api import Content, UserId, _Request
from schemas.support import Label, Labels, Note, Person, Priority

TicketStatusValue = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=r"^[^\x00]*\S[^\x00]*$")]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=20000, pattern=r"^[^\x00]*\S[^\x00]*$")]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\x00\s/]+$")]
Attachments = Annotated[list[dict[str, Any]], msgspec.Meta(max_length=10)]


class CreateTicket(_Request):
    subject: Subject
    description: Description
    customer_id: UserId | None = None  # a customer files its own; agents and admins name the customer
    priority: Priority = "normal"
    category: Label | None = None
    tags: Labels = []
    related_order_id: Reference | None = None
    session_id: Reference | None = None
    attachments: Attachments = []
    follow_up_of: Reference | None = None  # a closed ticket this one follows up


class TicketFromSession(_Request):
    subject: Subject | None = None  # default: from the session's first message
    description: Description | None = None
    priority: Priority | None = None  # default: the session's
    category: Label | None = None
    tags: Labels = []


class UpdateTicket(_Request):
    status: TicketStatusValue | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    assigned_to: UserId | UnsetType | None = UNSET
    tags: Labels | UnsetType = UNSET
    category: Label | UnsetType | None = UNSET


class AddComment(_Request):
    content: Content
    public: bool = True
    attachments: Attachments = []


class AddNote(_Request):
    content: Content
    mention_agent_ids: Annotated[list[UserId], msgspec.Meta(max_length=50)] = []


class EscalateTicket(_Request):
    escalation_type: Label
    reason: Note | None = None
    notes: Note | None = None
    urgency: Priority = "high"


class SlaView(msgspec.Struct, kw_only=True):
    """The ticket's SLA clock as last folded (and recorded by the breach timer); null while no policy applies."""

    response_due: datetime | None  # the open response cycle's due instant (null when none runs, or paused)
    resolution_due: datetime | None
    status: Literal["within_sla", "at_risk", "breached", "paused"]
    policy_id: str
    policy_version: int
    calendar_id: str | None = None  # null: 24/7
    calendar_version: int | None = None


class Ticket(msgspec.Struct, kw_only=True):
    id: str
    number: str
    subject: str
    status: TicketStatusValue
    priority: Priority
    category: str | None
    tags: list[str]
    customer: Person
    assigned_to: Person | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    sla: SlaView | None = None


class Author(msgspec.Struct):
    type: Literal["customer", "agent"]
    id: str
    name: str


class Comment(msgspec.Struct, kw_only=True):
    id: str
    author: Author
    content: str
    public: bool
    attachments: list[dict[str, Any]] = []
    timestamp: datetime


class Activity(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One entry of the ticket's timeline, from one of its events."""

    action: Literal["created", "updated", "assigned", "status_changed", "replied", "commented", "note_added",
                    "escalated", "closed", "sla_applied", "sla_at_risk", "sla_breached"]
    by: str
    timestamp: datetime
    seq: int
    status: str | None = None
    reason: str | None = None
    changed: list[str] | None = None
    agent: str | None = None
    escalation_type: str | None = None
    metric: str | None = None  # sla_at_risk, sla_breached: which clock
    due_at: datetime | None = None
    policy_id: str | None = None  # sla_applied: the versions from then on
    policy_version: int | None = None


class NoteView(msgspec.Struct, kw_only=True):
    id: str
    author: Author
    content: str
    mention_agent_ids: list[str]
    timestamp: datetime


class Related(msgspec.Struct, kw_only=True):
    order_id: str | None = None
    session_id: str | None = None
    room_id: str | None = None  # the session's room: its transcript (GET /support/sessions/{id})
    follow_up_of: str | None = None
    follow_ups: list[str] = []


class TicketDetail(Ticket, kw_only=True):
    description: str
    attachments: list[dict[str, Any]] = []
    comments: list[Comment] = []
    activities: list[Activity] = []
    notes: list[NoteView] = []  # internal: staff only (a customer always gets none)
    related: Related = msgspec.field(default_factory=Related)


class TicketPage(msgspec.Struct):
    data: list[Ticket]
    total: int
    limit: int
    offset: int
    total_is_estimate: bool = False  # a full-text listing with more than 10,000 matches: `total` is extrapolated

