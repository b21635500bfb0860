"""Support ticket commands: create (also from a session), update, comment, note, escalate, auto-close — and the views.

Each ticket is a stream of its own (`tkt_…`); every change is appended at the seq the decision was read at, so
two racing writers never both decide on the same state (the loser reads again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import structlog

from eventstore.append import AppendRequest
from projections.streams import notifications_stream
from projections.support_tickets import fetch_ticket, follow_ups, ticket_entries
from schemas import tickets as t
from schemas.errors import TicketNotFound, ValidationError
from schemas.events import (
    Event,
    NotificationSent,
    RecordedEvent,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketEscalated,
    SupportTicketNoteAdded,
    SupportTicketNumbered,
    SupportTicketUpdated,
)
from schemas.support import Person
from service.commands.metadata import metadata_for, retry_on_conflict
from service.commands.support import ticket_sla
from service.commands.support.sessions import customer_of, load_session, raised_priority
from service.domain.authorization import authorize
from service.domain.support.tickets import (
    after_requester_comment,
    display_number,
    next_status,
)
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.tickets")
_data = msgspec.json.Decoder(dict[str, Any])
_attachments = msgspec.json.Decoder(list[dict[str, Any]])
MENTION_TOPIC = "support.ticket.mention"
SYSTEM = "system"
STAFF = ("agent", "admin")
CHANGE_ATTEMPTS = 20


def counter_stream(tenant_id: str) -> str:
    """The tenant's ticket counter: its seq is the number of the tenant's latest ticket."""
    return f"tickets:{tenant_id}"


async def load_ticket(runtime: Runtime, principal: Principal, ticket_id: str) -> asyncpg.Record:
    """The ticket as the caller may see it: TICKET_NOT_FOUND for another tenant's, or another customer's."""
    row = await fetch_ticket(runtime.pool, principal.tenant_id, ticket_id)
    if row is None or (principal.role == "customer" and row["customer_id"] != principal.user_id):
        raise TicketNotFound("ticket not found", field="ticket_id")
    return row


async def create_ticket(runtime: Runtime, principal: Principal, cmd: t.CreateTicket) -> asyncpg.Record:
    """File a ticket with the tenant's next number (gapless: the counter and the ticket commit together)."""
    authorize("support.ticket.create", principal.role)
    session = None if cmd.session_id is None else await load_session(runtime, principal, cmd.session_id)
    named = cmd.customer_id if cmd.customer_id is not None or session is None else session["customer_id"]
    customer_id = await customer_of(runtime, principal, named)  # staff naming a session: its customer by default
    room_id = None
    if session is not None:
        if session["customer_id"] != customer_id:
            raise ValidationError("the session is another customer's", field="session_id")
        room_id = session["room_id"]
    if cmd.follow_up_of is not None:
        await _check_follow_up(runtime, principal, cmd.follow_up_of, customer_id)
    return await _file(runtime, principal, lambda ticket_id, number, year: SupportTicketCreated(
        ticket_id=ticket_id, number=number, display_number=display_number(number, year), subject=cmd.subject,
        description=cmd.description, customer_id=customer_id, priority=cmd.priority, created_by=principal.user_id,
        category=cmd.category, tags=_distinct(cmd.tags), related_order_id=cmd.related_order_id,
        session_id=cmd.session_id,
        room_id=room_id, attachments=list(cmd.attachments), follow_up_of=cmd.follow_up_of,
    ))


async def _check_follow_up(runtime: Runtime, principal: Principal, ticket_id: str, customer_id: str) -> None:
    row = await fetch_ticket(runtime.pool, principal.tenant_id, ticket_id)
    if row is None or (principal.role == "customer" and row["customer_id"] != principal.user_id):
        raise ValidationError("no such ticket", field="follow_up_of")
    if row["status"] != "closed" or row["customer_id"] != customer_id:
        raise ValidationError("a follow-up follows a closed ticket of the same customer", field="follow_up_of")


async def ticket_from_session(runtime: Runtime, principal: Principal, session_id: str,
                              cmd: t.TicketFromSession) -> asyncpg.Record:
    """Turn a support session into a ticket of its customer that links the session and its transcript (room)."""
    authorize("support.ticket.work", principal.role)
    session = await load_session(runtime, principal, session_id)
    opening = session["initial_message"]
    subject = cmd.subject or (opening or f"Support session {session_id}")[:300]
    description = cmd.description or opening or f"From support session {session_id}"
    return await _file(runtime, principal, lambda ticket_id, number, year: SupportTicketCreated(
        ticket_id=ticket_id, number=number, display_number=display_number(number, year), subject=subject,
        description=description, customer_id=session["customer_id"], priority=cmd.priority or session["priority"],
        created_by=principal.user_id, category=cmd.category, tags=_distinct(cmd.tags), session_id=session_id,
        room_id=session["room_id"],
    ))


async def _file(runtime: Runtime, principal: Principal,
                build: Callable[[str, int, datetime], SupportTicketCreated]) -> asyncpg.Record:
    tenant_id, ticket_id = principal.tenant_id, new_id("tkt")
    counter, meta = counter_stream(tenant_id), metadata_for(principal)

    async def attempt() -> None:
        last = await runtime.pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", counter) or 0
        created = build(ticket_id, last + 1, runtime.wall_clock())
        sla = await ticket_sla.policy_for(runtime, tenant_id, priority=created.priority, category=created.category,
                                          session_id=created.session_id)

        def requests(now: datetime) -> list[AppendRequest]:
            # The ticket's SLA events are in its first append, so no crash leaves a ticket without them.
            events: list[Event] = [created]
            if sla is not None:
                at = RecordedEvent(position=0, stream_id=ticket_id, seq=1, tenant_id=tenant_id, created_at=now,
                                   event=created, metadata=meta)
                events += ticket_sla.opening(at, sla, by=principal.user_id, now=runtime.wall_clock())
            return [
                AppendRequest(counter, tenant_id, [SupportTicketNumbered(ticket_id=ticket_id, number=last + 1)],
                              meta, expected_seq=last, create_stream=True),
                AppendRequest(ticket_id, tenant_id, events, meta, expected_seq=0, create_stream=True),
            ]

        await runtime.appender.append_together_at(requests)

    async with runtime.ticket_number_locks[tenant_id]:
        await retry_on_conflict(attempt, attempts=20)  # other instances' creators race for the counter
    row = await fetch_ticket(runtime.pool, tenant_id, ticket_id)
    assert row is not None
    return row


async def _change(runtime: Runtime, principal: Principal, ticket_id: str,
                  decide: Callable[[asyncpg.Record], list[Event]]) -> asyncpg.Record:
    """Load the ticket, decide, append at the seq it was read at (again if another write got there first), with
    the SLA events the change's fold records in the same transaction."""
    tenant_id, meta = principal.tenant_id, metadata_for(principal)

    async def attempt() -> None:
        row = await load_ticket(runtime, principal, ticket_id)
        events = decide(row)
        if not events:
            return
        seq = row["ticket_seq"]
        fold = await ticket_sla.folding(runtime, tenant_id, ticket_id, seq=seq)
        await runtime.appender.append_together_at(lambda now: [
            AppendRequest(ticket_id, tenant_id, fold(events, now), meta, expected_seq=seq)])

    # The breach timer appends to the ticket's stream too, so racing writers may lose a few rounds.
    await retry_on_conflict(attempt, attempts=CHANGE_ATTEMPTS)
    return await load_ticket(runtime, principal, ticket_id)


async def update_ticket(runtime: Runtime, principal: Principal, ticket_id: str, cmd: t.UpdateTicket) -> asyncpg.Record:
    """Change status, priority, assignee, tags or category under the status machine's rules."""
    authorize("support.ticket.work", principal.role)
    await load_ticket(runtime, principal, ticket_id)  # another tenant's is not found, whatever the body says
    if isinstance(cmd.assigned_to, str):
        await _require_staff(runtime, principal.tenant_id, [cmd.assigned_to], field="assigned_to")

    def decide(row: asyncpg.Record) -> list[Event]:
        assignee = row["assigned_to"] if cmd.assigned_to is msgspec.UNSET else cmd.assigned_to
        assigning = assignee is not None and assignee != row["assigned_to"]
        requested = None if cmd.status is msgspec.UNSET else cmd.status
        status = next_status(row["status"], requested, assignee=assignee, assigning=assigning)
        new = {"status": status, "priority": _given(cmd.priority, row["priority"]), "assigned_to": assignee,
               "tags": _distinct(_given(cmd.tags, row["tags"])), "category": _given(cmd.category, row["category"])}
        changed = [f for f, value in new.items() if value != (list(row[f]) if f == "tags" else row[f])]
        if not changed:
            return []
        reason = "assigned" if requested is None and "status" in changed else None
        return [SupportTicketUpdated(by=principal.user_id, changed=changed, reason=reason, **new)]

    return await _change(runtime, principal, ticket_id, decide)


def _distinct(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _given(value: Any, current: Any) -> Any:
    return current if value is msgspec.UNSET else value


async def _require_staff(runtime: Runtime, tenant_id: str, user_ids: list[str], *, field: str) -> None:
    rows = await runtime.pool.fetch("SELECT user_id FROM users WHERE tenant_id = $1 AND user_id = ANY($2::text[])"
                                    " AND role = ANY($3::text[])", tenant_id, user_ids, list(STAFF))
    missing = set(user_ids) - {r["user_id"] for r in rows}
    if missing:
        raise ValidationError(f"not an agent or admin of the desk: {', '.join(sorted(missing))}", field=field)


async def comment(runtime: Runtime, principal: Principal, ticket_id: str, cmd: t.AddComment) -> asyncpg.Record:
    """A comment; the ticket's customer comments publicly only, and its comment reopens a pending, on-hold or
    solved ticket."""
    authorize("support.ticket.comment", principal.role)
    is_customer = principal.role == "customer"
    if is_customer and not cmd.public:
        raise ValidationError("a customer's comments are public", field="public")

    def decide(row: asyncpg.Record) -> list[Event]:
        status = after_requester_comment(row["status"]) if is_customer else next_status(
            row["status"], None, assignee=row["assigned_to"], assigning=False)
        events: list[Event] = [SupportTicketCommented(
            comment_id=new_id("cmt"), author_id=principal.user_id, author_type="customer" if is_customer else "agent",
            content=cmd.content, public=cmd.public, attachments=list(cmd.attachments),
        )]
        if status != row["status"]:
            events.append(SupportTicketUpdated(by=principal.user_id, changed=["status"], status=status,
                                               priority=row["priority"], assigned_to=row["assigned_to"],
                                               tags=list(row["tags"]), category=row["category"],
                                               reason="requester_comment"))
        return events

    return await _change(runtime, principal, ticket_id, decide)


async def add_note(runtime: Runtime, principal: Principal, ticket_id: str, cmd: t.AddNote) -> asyncpg.Record:
    """An internal note (never shown to customers); each mentioned agent gets a notification naming the ticket."""
    authorize("support.ticket.work", principal.role)
    mentions = sorted(set(cmd.mention_agent_ids))
    await load_ticket(runtime, principal, ticket_id)  # another tenant's is not found, whatever the body says
    if mentions:
        await _require_staff(runtime, principal.tenant_id, mentions, field="mention_agent_ids")
    note_id = new_id("note")

    def decide(row: asyncpg.Record) -> list[Event]:
        next_status(row["status"], None, assignee=row["assigned_to"], assigning=False)  # closed is final
        return [SupportTicketNoteAdded(note_id=note_id, author_id=principal.user_id, content=cmd.content,
                                       mention_agent_ids=mentions)]

    row = await _change(runtime, principal, ticket_id, decide)
    if mentions:
        # Only ids: the note's words reach the mentioned agents through the ticket read, which is staff-only.
        await runtime.appender.append(notifications_stream(principal.tenant_id), [NotificationSent(
            notification_id=new_id("notif"), topic=MENTION_TOPIC, user_ids=mentions,
            payload={"ticket_id": ticket_id, "number": row["display_number"], "note_id": note_id,
                     "by": principal.user_id},
        )], tenant_id=principal.tenant_id, metadata=metadata_for(principal), create_stream=True)
    return row


async def escalate(runtime: Runtime, principal: Principal, ticket_id: str, cmd: t.EscalateTicket) -> asyncpg.Record:
    """Escalate: record the type and reason (the notes stay internal) and raise the priority to the urgency."""
    authorize("support.ticket.work", principal.role)

    def decide(row: asyncpg.Record) -> list[Event]:
        next_status(row["status"], None, assignee=row["assigned_to"], assigning=False)  # closed is final
        return [SupportTicketEscalated(escalation_type=cmd.escalation_type, by=principal.user_id,
                                       priority=raised_priority(row["priority"], cmd.urgency), reason=cmd.reason,
                                       notes=cmd.notes)]

    return await _change(runtime, principal, ticket_id, decide)


async def reapply_sla(runtime: Runtime, principal: Principal, ticket_id: str) -> asyncpg.Record:
    """Match the tenant's current SLA policies against the ticket again and run its clock on those versions."""
    authorize("support.ticket.work", principal.role)
    row = await load_ticket(runtime, principal, ticket_id)
    next_status(row["status"], None, assignee=row["assigned_to"], assigning=False)  # closed is final
    await ticket_sla.reapply(runtime, principal, ticket_id)
    return await load_ticket(runtime, principal, ticket_id)


# --- views --------------------------------------------------------------------------------------------------


async def people(runtime: Runtime, tenant_id: str, user_ids: list[str]) -> dict[str, Person]:
    """Each user by id, name and avatar (unknown ids by their id)."""
    rows = await runtime.pool.fetch(
        "SELECT user_id, display_name, avatar_url FROM users WHERE tenant_id = $1 AND user_id = ANY($2::text[])",
        tenant_id, sorted(set(user_ids)),
    )
    found = {r["user_id"]: Person(r["user_id"], r["display_name"], r["avatar_url"]) for r in rows}
    return {u: found.get(u) or Person(u, u) for u in user_ids}


def ticket_summary(row: asyncpg.Record, names: dict[str, Person]) -> t.Ticket:
    """The seed's ticket shape from a ticket row (`names` holds its customer and assignee)."""
    return t.Ticket(
        id=row["ticket_id"], number=row["display_number"], subject=row["subject"], status=row["status"],
        priority=row["priority"], category=row["category"], tags=list(row["tags"]),
        customer=names[row["customer_id"]],
        assigned_to=names[row["assigned_to"]] if row["assigned_to"] else None, created_at=row["created_at"],
        updated_at=row["updated_at"], first_response_at=row["first_response_at"], solved_at=row["solved_at"],
        sla=_sla(row),
    )


def _sla(row: asyncpg.Record) -> t.SlaView | None:
    if row["sla_policy_id"] is None or row["sla_status"] is None:
        return None
    return t.SlaView(response_due=row["sla_response_due"], resolution_due=row["sla_resolution_due"],
                     status=row["sla_status"], policy_id=row["sla_policy_id"],
                     policy_version=row["sla_policy_version"], calendar_id=row["sla_calendar_id"],
                     calendar_version=row["sla_calendar_version"])


async def ticket_list_view(runtime: Runtime, tenant_id: str, rows: list[asyncpg.Record]) -> list[t.Ticket]:
    """Summaries of many tickets with one lookup of the people they name."""
    ids = [r["customer_id"] for r in rows] + [r["assigned_to"] for r in rows if r["assigned_to"]]
    names = await people(runtime, tenant_id, ids)
    return [ticket_summary(r, names) for r in rows]


async def ticket_detail(runtime: Runtime, principal: Principal, row: asyncpg.Record) -> t.TicketDetail:
    """The ticket with comments, timeline, notes and related items — internal ones only for staff."""
    staff = principal.role != "customer"
    entries = await ticket_entries(runtime.pool, row["ticket_id"], internal=staff)
    decoded = [(e, _data.decode(e["data"])) for e in entries]
    ids = [row["customer_id"], *([row["assigned_to"]] if row["assigned_to"] else []), *(e["actor"] for e in entries)]
    names = await people(runtime, principal.tenant_id, ids)
    summary = ticket_summary(row, names)
    comments, notes, activities = [], [], []
    for entry, data in decoded:
        activities.append(_activity(entry, data))
        if entry["kind"] == "support.ticket.commented":
            comments.append(t.Comment(
                id=data["comment_id"], author=_author(data["author_type"], entry["actor"], names),
                content=data["content"], public=data.get("public", True), attachments=data.get("attachments", []),
                timestamp=entry["created_at"],
            ))
        elif entry["kind"] == "support.ticket.note_added":
            notes.append(t.NoteView(id=data["note_id"], author=_author("agent", entry["actor"], names),
                                    content=data["content"], mention_agent_ids=data.get("mention_agent_ids", []),
                                    timestamp=entry["created_at"]))
    related = t.Related(order_id=row["related_order_id"], session_id=row["session_id"], room_id=row["room_id"],
                        follow_up_of=row["follow_up_of"],
                        follow_ups=await follow_ups(runtime.pool, principal.tenant_id, row["ticket_id"]))
    fields = {f: getattr(summary, f) for f in t.Ticket.__struct_fields__}
    return t.TicketDetail(**fields, description=row["description"], attachments=_attachments.decode(row["attachments"]),
                          comments=comments, activities=activities, notes=notes, related=related)


def _author(kind: str, user_id: str, names: dict[str, Person]) -> t.Author:
    return t.Author(type="customer" if kind == "customer" else "agent", id=user_id, name=names[user_id].name)


def _activity(entry: asyncpg.Record, data: dict[str, Any]) -> t.Activity:
    kind, common = entry["kind"], {"by": entry["actor"], "timestamp": entry["created_at"], "seq": entry["seq"]}
    if kind == "support.ticket.created":
        return t.Activity(action="created", **common)
    if kind == "support.ticket.updated":
        changed = data.get("changed", [])
        status = data.get("status") if "status" in changed else None
        if status == "closed":
            action = "closed"
        elif "assigned_to" in changed and data.get("assigned_to"):
            action = "assigned"
        else:
            action = "status_changed" if status else "updated"
        return t.Activity(action=action, status=status, reason=data.get("reason"), changed=changed,  # type: ignore[arg-type]
                          agent=data.get("assigned_to") if "assigned_to" in changed else None, **common)
    if kind == "support.ticket.commented":
        replied = data["author_type"] == "agent" and data.get("public", True)
        return t.Activity(action="replied" if replied else "commented", **common)
    if kind == "support.ticket.note_added":
        return t.Activity(action="note_added", **common)
    if kind == "support.ticket.sla_applied":
        return t.Activity(action="sla_applied", policy_id=data["policy_id"], policy_version=data["policy_version"],
                          **common)
    if kind in ("sla.at_risk", "sla.breached"):
        return t.Activity(action="sla_breached" if kind == "sla.breached" else "sla_at_risk", metric=data["metric"],
                          due_at=msgspec.convert(data["due_at"], datetime), **common)
    # An escalation's notes are internal: the timeline names only its type.
    return t.Activity(action="escalated", escalation_type=data.get("escalation_type"), **common)
