"""Messages and the raw room log: send, page through messages, sync events by seq."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.messages import page_of_messages, reaction_counts, readable_events
from projections.user_rooms import cleared_seq
from schemas import api
from schemas.errors import (
    Forbidden,
    IdempotencyKeyReused,
    MessageNotFound,
    MessageTooLong,
    NotAMember,
    PostingRestricted,
    RoomNotFound,
    RoomWasDeleted,
    ValidationError,
)
from service.commands import messages as messaging
from service.commands.rooms import require_member
from service.web.endpoints import Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller, runtime_of
from service.web.views import message_view, room_event_view

AFTER_SEQ = Query("after_seq", "only entries with a greater seq", minimum=0)
BEFORE_SEQ = Query("before_seq", "only messages with a smaller seq", minimum=1)
MESSAGES_LIMIT = Query("limit", "most messages to return", minimum=1, maximum=100, default=50)
THREAD = TextQuery("thread_id", "only the replies in this message's thread", max_length=64, required=False)
EVENTS_AFTER_SEQ = Query("after_seq", "only events with a greater seq", minimum=0, default=0)
EVENTS_LIMIT = Query("limit", "most events to return", minimum=1, maximum=1000, default=100)


async def send_message(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.SendMessage)
    sent = await messaging.send_message(runtime_of(request), principal, room_id, cmd, state=request.scope["state"])
    headers = {"X-Idempotent-Replay": "true"} if sent.duplicate else None
    return JSON(sent.result, status_code=201, headers=headers)


async def list_messages(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    after_seq, before_seq, limit = AFTER_SEQ.read(request), BEFORE_SEQ.read(request), MESSAGES_LIMIT.require(request)
    await require_member(request, principal, room_id)
    pool = await runtime_of(request).reads.for_read()
    # History the caller deleted for themselves (DELETE /rooms/{id}?scope=for_me) is not theirs to read.
    floor = await cleared_seq(pool, principal.tenant_id, principal.user_id, room_id)
    rows = await page_of_messages(pool, room_id, after_seq=after_seq, before_seq=before_seq, limit=limit,
                                  thread_id=THREAD.read(request), floor_seq=floor,
                                  now=runtime_of(request).wall_clock())
    counts = await reaction_counts(pool, [r["message_id"] for r in rows], principal.user_id) if rows else {}
    return JSON([message_view(r, counts.get(r["message_id"], [])) for r in rows])


async def list_events(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    after_seq, limit = EVENTS_AFTER_SEQ.require(request), EVENTS_LIMIT.require(request)
    await require_member(request, principal, room_id)
    pool = await runtime_of(request).reads.for_read()
    floor = await cleared_seq(pool, principal.tenant_id, principal.user_id, room_id)
    events, _ = await readable_events(pool, room_id, after_seq=max(after_seq, floor), limit=limit,
                                      now=runtime_of(request).wall_clock())
    return JSON([room_event_view(e) for e in events])


_MESSAGE = "/rooms/{room_id}/messages/{message_id}"
# What a sender does next with the message: read, edit or delete it, react to it, see its reactions.
_MESSAGE_LINKS = tuple(Link(method, path) for method, path in (
    ("GET", _MESSAGE), ("PATCH", _MESSAGE), ("DELETE", _MESSAGE),
    ("POST", f"{_MESSAGE}/reactions"), ("GET", f"{_MESSAGE}/reactions"),
))

ENDPOINTS = [
    Endpoint("POST", "/rooms/{room_id}/messages", send_message,
             "Send a message (or a reply, with thread_id); a repeated client_msg_id returns the first result",
             body=api.SendMessage, response=api.SendResult, status=201,
             errors=(RoomNotFound, NotAMember, Forbidden, PostingRestricted, MessageTooLong, MessageNotFound,
                     IdempotencyKeyReused, ValidationError, RoomWasDeleted),
             links=_MESSAGE_LINKS),
    Endpoint("GET", "/rooms/{room_id}/messages", list_messages, "Messages of a room in seq order",
             response=list[api.Message], query=(AFTER_SEQ, BEFORE_SEQ, MESSAGES_LIMIT, THREAD),
             errors=(RoomNotFound, NotAMember)),
    Endpoint("GET", "/rooms/{room_id}/events", list_events, "The raw room log after a seq, every event type",
             response=list[api.RoomEvent], query=(EVENTS_AFTER_SEQ, EVENTS_LIMIT), errors=(RoomNotFound, NotAMember)),
]
