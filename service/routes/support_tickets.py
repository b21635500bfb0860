"""Support tickets (seed 001 "Tickets", under /support): file, list, read, update, comment, note, escalate, and
a ticket from a session."""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from projections.support_tickets import TicketFilter, list_tickets
from schemas import tickets as t
from schemas.errors import (
    Forbidden,
    InvalidTransition,
    SessionNotFound,
    SlaPolicyNotFound,
    TicketClosed,
    TicketNotFound,
    ValidationError,
)
from service.commands.support import tickets as commands
from service.commands.support.sessions import NOBODY, customer_filter
from service.domain.support.tickets import STATUSES
from service.identity.auth import Principal
from service.web.endpoints import Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

LIMIT = Query("limit", "most tickets to return", minimum=1, maximum=100, default=25)
OFFSET = Query("offset", "tickets to skip", minimum=0, default=0)
_FILTERS = (
    TextQuery("status", "only tickets with this status", max_length=20, required=False),
    TextQuery("priority", "low, normal, high or urgent", max_length=20, required=False),
    TextQuery("assigned_to", "only tickets assigned to this agent", max_length=128, required=False),
    TextQuery("customer_id", "only this customer's tickets", max_length=128, required=False),
    TextQuery("category", "only tickets of this category", max_length=64, required=False),
    TextQuery("tag", "only tickets with this tag", max_length=64, required=False),
    TextQuery("sla_status", "within_sla, at_risk, breached or paused (the SLA fold's status)", max_length=20,
              required=False),
    TextQuery("q", "words that must all be in the subject or description", max_length=200, required=False),
)
_CHOICES = {
    "status": STATUSES, "priority": ("low", "normal", "high", "urgent"),
    "sla_status": ("within_sla", "at_risk", "breached", "paused"),
}


def _ticket_id(request: Request) -> str:
    return str(request.path_params["ticket_id"])


async def _detail(request: Request, principal: Principal, row: asyncpg.Record, status_code: int = 200) -> Response:
    return JSON(await commands.ticket_detail(runtime_of(request), principal, row), status_code=status_code)


async def create_ticket(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.CreateTicket)
    row = await commands.create_ticket(runtime_of(request), principal, cmd)
    return await _detail(request, principal, row, 201)


async def ticket_from_session(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.TicketFromSession)
    row = await commands.ticket_from_session(runtime_of(request), principal, str(request.path_params["session_id"]),
                                             cmd)
    return await _detail(request, principal, row, 201)


async def get_tickets(request: Request) -> Response:
    principal = await caller_may(request, "support.ticket.read")
    values = {q.name: q.read(request) for q in _FILTERS}
    for name, choices in _CHOICES.items():
        if values[name] is not None and values[name] not in choices:
            raise ValidationError(f"{name} must be one of {', '.join(choices)}", field=name)
    values["customer_id"] = customer_filter(principal, values["customer_id"])
    limit, offset = LIMIT.require(request), OFFSET.require(request)
    if values["customer_id"] is NOBODY:
        return JSON(t.TicketPage(data=[], total=0, limit=limit, offset=offset))
    runtime = runtime_of(request)
    async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows, count = await list_tickets(conn, principal.tenant_id, TicketFilter(**values), limit=limit,
                                         offset=offset)
    return JSON(t.TicketPage(data=await commands.ticket_list_view(runtime, principal.tenant_id, rows),
                             total=count.total, limit=limit, offset=offset, total_is_estimate=count.estimate))


async def get_ticket(request: Request) -> Response:
    principal = await caller_may(request, "support.ticket.read")
    row = await commands.load_ticket(runtime_of(request), principal, _ticket_id(request))
    return await _detail(request, principal, row)


async def put_ticket(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.UpdateTicket)
    row = await commands.update_ticket(runtime_of(request), principal, _ticket_id(request), cmd)
    return await _detail(request, principal, row)


async def post_comment(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.AddComment)
    row = await commands.comment(runtime_of(request), principal, _ticket_id(request), cmd)
    return await _detail(request, principal, row, 201)


async def post_note(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.AddNote)
    row = await commands.add_note(runtime_of(request), principal, _ticket_id(request), cmd)
    return await _detail(request, principal, row, 201)


async def post_escalate(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, t.EscalateTicket)
    row = await commands.escalate(runtime_of(request), principal, _ticket_id(request), cmd)
    return await _detail(request, principal, row)


async def post_sla_reapply(request: Request) -> Response:
    principal = await caller(request)
    row = await commands.reapply_sla(runtime_of(request), principal, _ticket_id(request))
    return await _detail(request, principal, row)


_TICKET = "/support/tickets/{ticket_id}"
_FOUND = (TicketNotFound, Forbidden)
_CHANGE = (*_FOUND, TicketClosed)
_LINKS = tuple(Link(m, p, {"ticket_id": "$response.body#/id"}) for m, p in (
    ("GET", _TICKET), ("PUT", _TICKET), ("POST", f"{_TICKET}/comments"), ("POST", f"{_TICKET}/notes"),
))

ENDPOINTS = [
    Endpoint("POST", "/support/tickets", create_ticket,
             "File a ticket with the tenant's next gapless number (a customer its own; staff name the customer)",
             body=t.CreateTicket, response=t.TicketDetail, status=201, errors=(Forbidden, SessionNotFound),
             links=_LINKS),
    Endpoint("GET", "/support/tickets", get_tickets,
             "Tickets matching every filter, newest first, with the total (a customer's own only)",
             response=t.TicketPage, query=(*_FILTERS, LIMIT, OFFSET), errors=(Forbidden,)),
    Endpoint("GET", _TICKET, get_ticket,
             "One ticket with comments, timeline and related items (internal notes for staff only)",
             response=t.TicketDetail, errors=_FOUND),
    Endpoint("PUT", _TICKET, put_ticket,
             "Change status, priority, assignee, tags or category under the status rules (agents)",
             body=t.UpdateTicket, response=t.TicketDetail, errors=(*_CHANGE, InvalidTransition)),
    Endpoint("POST", f"{_TICKET}/comments", post_comment,
             "Comment (the ticket's customer, publicly, which reopens a pending, on-hold or solved ticket; agents)",
             body=t.AddComment, response=t.TicketDetail, status=201, errors=_CHANGE),
    Endpoint("POST", f"{_TICKET}/notes", post_note,
             "An internal note, never shown to customers; mentioned agents are notified (agents)",
             body=t.AddNote, response=t.TicketDetail, status=201, errors=_CHANGE),
    Endpoint("POST", f"{_TICKET}/escalate", post_escalate,
             "Escalate the ticket: type, reason, internal notes; the priority rises to the urgency (agents)",
             body=t.EscalateTicket, response=t.TicketDetail, errors=_CHANGE),
    Endpoint("POST", f"{_TICKET}/sla/reapply", post_sla_reapply,
             "Match the tenant's current SLA policies again and run the ticket's clock on those versions (agents)",
             response=t.TicketDetail, errors=(*_CHANGE, SlaPolicyNotFound)),
    Endpoint("POST", "/support/sessions/{session_id}/ticket", ticket_from_session,
             "Turn a support session into a ticket that links the session and its transcript (agents)",
             body=t.TicketFromSession, response=t.TicketDetail, status=201, errors=(SessionNotFound, Forbidden),
             links=_LINKS),
]
