"""Support sessions (seed 001, under /support): start, read, list, message, hold, resume, transfer, escalate,
end, rate, and the routing record."""

from __future__ import annotations

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from projections.support_sessions import list_sessions, routing_records
from schemas import support as s
from schemas.errors import (
    AgentNotFound,
    AlreadyRated,
    Forbidden,
    IdempotencyKeyReused,
    InvalidTransition,
    NoAgentsAvailable,
    NotAMember,
    SessionClosed,
    SessionNotFound,
    TeamNotFound,
    ValidationError,
)
from service.commands.support import sessions as commands
from service.identity.auth import Principal
from service.web.endpoints import Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller, caller_may, runtime_of

LIMIT = Query("limit", "most sessions to return", minimum=1, maximum=100, default=50)
OFFSET = Query("offset", "sessions to skip", minimum=0, default=0)
STATUS = TextQuery("status", "only sessions with this status", max_length=20, required=False)
AGENT = TextQuery("agent_id", "only sessions assigned to this agent", max_length=128, required=False)
CUSTOMER = TextQuery("customer_id", "only this customer's sessions", max_length=128, required=False)
TEAM = TextQuery("team_id", "only sessions for this team", max_length=64, required=False)
_STATUSES = ("queued", "active", "on_hold", "transferred", "resolved", "closed")
_candidates = msgspec.json.Decoder(list[s.CandidateView])


def _session_id(request: Request) -> str:
    return str(request.path_params["session_id"])


async def start_session(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.StartSession)
    runtime = runtime_of(request)
    row = await commands.start_session(runtime, principal, cmd)
    view = await commands.session_view(runtime, principal, row)
    return JSON(_summary(view), status_code=201)


def _summary(view: s.SessionDetail) -> s.Session:
    fields = {f: getattr(view, f) for f in s.Session.__struct_fields__}
    return s.Session(**fields)


async def get_session(request: Request) -> Response:
    principal = await caller_may(request, "support.session.read")
    runtime = runtime_of(request)
    row = await commands.load_session(runtime, principal, _session_id(request))
    return JSON(await commands.session_view(runtime, principal, row, with_messages=True))


async def get_sessions(request: Request) -> Response:
    principal = await caller_may(request, "support.session.read")
    status = STATUS.read(request)
    if status is not None and status not in _STATUSES:
        raise ValidationError(f"status must be one of {', '.join(_STATUSES)}", field="status")
    customer = commands.customer_filter(principal, CUSTOMER.read(request))
    if customer is commands.NOBODY:
        return JSON([])
    runtime = runtime_of(request)
    rows = await list_sessions(runtime.pool, principal.tenant_id, status=status, agent_id=AGENT.read(request),
                               customer_id=customer, team_id=TEAM.read(request), limit=LIMIT.require(request),
                               offset=OFFSET.require(request))
    estimates = await commands.queue_estimates(runtime, principal.tenant_id) if any(
        r["status"] in commands.WAITING for r in rows) else {}
    return JSON([_summary(await commands.session_view(runtime, principal, r, estimates=estimates)) for r in rows])


async def post_message(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.SessionMessage)
    state = request.scope.setdefault("state", {})
    sent = await commands.send_session_message(runtime_of(request), principal, _session_id(request), cmd, state=state)
    return JSON(sent, status_code=201)


async def _answer(request: Request, principal: Principal, row: asyncpg.Record) -> Response:
    return JSON(_summary(await commands.session_view(runtime_of(request), principal, row)))


async def hold(request: Request) -> Response:
    principal = await caller(request)
    row = await commands.hold(runtime_of(request), principal, _session_id(request))
    return await _answer(request, principal, row)


async def resume(request: Request) -> Response:
    principal = await caller(request)
    row = await commands.resume(runtime_of(request), principal, _session_id(request))
    return await _answer(request, principal, row)


async def transfer(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.Transfer)
    row = await commands.transfer(runtime_of(request), principal, _session_id(request), cmd)
    return await _answer(request, principal, row)


async def escalate(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.Escalate)
    row = await commands.escalate(runtime_of(request), principal, _session_id(request), cmd)
    return await _answer(request, principal, row)


async def end(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.EndSession)
    row = await commands.end(runtime_of(request), principal, _session_id(request), cmd)
    return await _answer(request, principal, row)


async def rate(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, s.Rating)
    row = await commands.rate(runtime_of(request), principal, _session_id(request), cmd)
    return await _answer(request, principal, row)


async def get_routing(request: Request) -> Response:
    principal = await caller_may(request, "support.routing.read")
    runtime = runtime_of(request)
    row = await commands.load_session(runtime, principal, _session_id(request))
    records = await routing_records(runtime.pool, row["session_id"])
    return JSON(s.SessionRouting(session_id=row["session_id"], status=row["status"], assignments=[
        s.RoutingRecord(agent_id=r["agent_id"], policy_version=r["policy_version"], assigned_at=r["assigned_at"],
                        waited_seconds=r["waited_seconds"], candidates=_candidates.decode(r["candidates"]))
        for r in records
    ]))


_SESSION = "/support/sessions/{session_id}"
_FOUND = (SessionNotFound, Forbidden)
_CHANGE = (*_FOUND, SessionClosed, InvalidTransition)
_LINKS = tuple(Link(m, p) for m, p in (
    ("GET", _SESSION), ("POST", f"{_SESSION}/messages"), ("POST", f"{_SESSION}/end"), ("GET", f"{_SESSION}/routing"),
))

ENDPOINTS = [
    Endpoint("POST", "/support/sessions", start_session,
             "Start a support session: it opens a support room and is routed at once (or queued)",
             body=s.StartSession, response=s.Session, status=201,
             errors=(NoAgentsAvailable, Forbidden, TeamNotFound), links=_LINKS),
    Endpoint("GET", "/support/sessions", get_sessions, "Support sessions, filtered (a customer's own only)",
             response=list[s.Session], query=(STATUS, AGENT, CUSTOMER, TEAM, LIMIT, OFFSET), errors=(Forbidden,)),
    Endpoint("GET", _SESSION, get_session, "One support session with its messages", response=s.SessionDetail,
             errors=_FOUND),
    Endpoint("POST", f"{_SESSION}/messages", post_message, "Write in the session (through its room)",
             body=s.SessionMessage, response=s.SentMessage, status=201,
             errors=(*_CHANGE, NotAMember, IdempotencyKeyReused)),
    Endpoint("POST", f"{_SESSION}/hold", hold, "Put an active session on hold (agents)", response=s.Session,
             errors=_CHANGE),
    Endpoint("POST", f"{_SESSION}/resume", resume, "Resume a session on hold (agents)", response=s.Session,
             errors=_CHANGE),
    Endpoint("POST", f"{_SESSION}/transfer", transfer, "Transfer to an agent or a team (agents); notes stay internal",
             body=s.Transfer, response=s.Session, errors=(*_CHANGE, TeamNotFound, AgentNotFound)),
    Endpoint("POST", f"{_SESSION}/escalate", escalate,
             "Escalate: raise the priority and re-queue for the level's escalation team (agents)",
             body=s.Escalate, response=s.Session, errors=_CHANGE),
    Endpoint("POST", f"{_SESSION}/end", end, "End the session (its customer, agents)", body=s.EndSession,
             response=s.Session, errors=_CHANGE),
    Endpoint("POST", f"{_SESSION}/rating", rate, "Rate an ended session, once (its customer)", body=s.Rating,
             response=s.Session, errors=(*_CHANGE, AlreadyRated)),
    Endpoint("GET", f"{_SESSION}/routing", get_routing,
             "Why the session went where it did: policy version and every candidate with its reasons",
             response=s.SessionRouting, errors=_FOUND),
]
