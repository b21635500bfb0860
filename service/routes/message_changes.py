"""One message after it was sent: read it, edit it, delete it, react to it.

Each change is an event in the room's log (`message.edited`, `message.deleted`, `reaction.added`,
`reaction.removed`) with a seq of its own, so clients syncing by last_seq see it like any other event.
A change is decided on the message as read, and appended with what it relied on re-checked under the
room's lock: the message is still there and not deleted, the caller still a member. So racing deletions
record one message.deleted (the others are answered with it), and nothing is recorded after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventstore.append import AppendResult
from projections.guards import LiveMessage, MemberOf
from projections.messages import fetch_message, message_state, reaction_counts, reactors
from schemas import api
from schemas.errors import (
    MessageNotFound,
    MessageTooLong,
    MessageWasDeleted,
    NotAMember,
    NotMessageSender,
    NotRoomAdmin,
    RoomlogError,
    RoomNotFound,
    RoomWasDeleted,
    ValidationError,
)
from schemas.events import Event, ForwardedFrom
from service.commands.messages import send_message
from service.commands.metadata import metadata_for
from service.commands.rooms import actor_of, require_member
from service.domain.messages import (
    MessageState,
    decide_delete,
    decide_edit,
    decide_reaction,
    delete_action,
    membership_recheck,
)
from service.identity.auth import Principal
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller, runtime_of
from service.web.views import message_view, reaction_count

_emoji = msgspec.json.Decoder(api.Emoji)
_meta = msgspec.json.Decoder(dict[str, Any])
_EMOJI_RULE = "emoji must be 1-64 characters without whitespace, '/' or control characters, not '.' or '..'"


@dataclass(frozen=True)
class _Read:
    """What a change was decided on."""

    room_role: str | None
    message: MessageState | None
    reacted: bool
    deleted_seq: int | None
    deleted_at: datetime | None


async def _read(request: Request, principal: Principal, emoji: str | None = None) -> _Read:
    room_id, message_id = request.path_params["room_id"], request.path_params["message_id"]
    row = await message_state(runtime_of(request).pool, principal.tenant_id, room_id, message_id,
                              principal.user_id, emoji)
    if row is None:
        raise RoomNotFound("room not found", field="room_id")
    message = MessageState(sender_id=row["sender_id"], deleted=row["deleted_seq"] is not None) if row["found"] else None
    return _Read(row["role"], message, row["reacted"], row["deleted_seq"], row["deleted_at"])


async def _append(
    request: Request, principal: Principal, events: Sequence[Event], *, recheck: Literal["member", "admin"] | None,
    deletes: bool = False,
) -> AppendResult:
    """Append to the room, re-checking under its lock that the message is live and the membership relied on
    (`recheck`, from service.domain.messages.membership_recheck)."""
    room_id, message_id = request.path_params["room_id"], request.path_params["message_id"]
    member = None
    if recheck is not None:
        member = MemberOf(principal.tenant_id, room_id, principal.user_id, "admin" if recheck == "admin" else None)
    return await runtime_of(request).appender.append(
        room_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
        guard=LiveMessage(room_id, message_id, member, deletes=deletes),
    )


async def _readable_message(request: Request, principal: Principal) -> asyncpg.Record:
    """The path's message, for a member of its room (403/404 otherwise)."""
    room_id, message_id = request.path_params["room_id"], request.path_params["message_id"]
    await require_member(request, principal, room_id)
    row = await fetch_message(runtime_of(request).pool, room_id, message_id, now=runtime_of(request).wall_clock())
    if row is None:
        raise MessageNotFound("no such message in this room", field="message_id")
    return row


def _changed(message_id: str, result: AppendResult) -> Response:
    """The answer to an edit or a deletion: the event that recorded it."""
    written = result.events[0]
    return JSON(api.MessageChange(message_id=message_id, seq=written.seq, at=written.created_at))


async def get_message(request: Request) -> Response:
    principal = await caller(request)
    row = await _readable_message(request, principal)
    counts = await reaction_counts(runtime_of(request).pool, [row["message_id"]], principal.user_id)
    return JSON(message_view(row, counts.get(row["message_id"], [])))


async def edit_message(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.EditMessage)
    await runtime_of(request).limiter.admit_send(principal, request.scope["state"])
    read = await _read(request, principal)
    actor = actor_of(principal)
    event = decide_edit(actor, read.room_role, request.path_params["message_id"], read.message, cmd)
    recheck = membership_recheck("message.edit", actor, read.room_role)
    return _changed(event.message_id, await _append(request, principal, [event], recheck=recheck))


async def delete_message(request: Request) -> Response:
    principal = await caller(request)
    read = await _read(request, principal)
    actor = actor_of(principal)
    message_id = request.path_params["message_id"]
    events = decide_delete(actor, read.room_role, message_id, read.message)
    if not events:  # deleted before: answer with that deletion
        return _first_deletion(message_id, read)
    assert read.message is not None
    recheck = membership_recheck(delete_action(actor, read.message), actor, read.room_role)
    try:
        result = await _append(request, principal, events, deletes=True, recheck=recheck)
    except MessageWasDeleted:  # a racing deletion was recorded first; it is committed, so a read sees it
        return _first_deletion(message_id, await _read(request, principal))
    return _changed(message_id, result)


def _first_deletion(message_id: str, read: _Read) -> Response:
    assert read.deleted_seq is not None and read.deleted_at is not None
    return JSON(api.MessageChange(message_id=message_id, seq=read.deleted_seq, at=read.deleted_at))


async def add_reaction(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.AddReaction)
    return await _change_reaction(request, principal, cmd.emoji, add=True)


async def remove_reaction(request: Request) -> Response:
    principal = await caller(request)
    try:
        emoji = _emoji.decode(msgspec.json.encode(request.path_params["emoji"]))
    except msgspec.ValidationError:
        raise ValidationError(_EMOJI_RULE, field="emoji") from None
    return await _change_reaction(request, principal, emoji, add=False)


async def forward_message(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.ForwardMessage)
    source = await _readable_message(request, principal)
    if source["deleted_at"] is not None:
        raise MessageWasDeleted("the message was deleted")
    origin = ForwardedFrom(room_id=request.path_params["room_id"], message_id=source["message_id"])
    copy = api.SendMessage(content=source["content"], meta=_meta.decode(source["meta"]) if source["meta"] else None)
    results = []
    # Each target is a send of its own: one refusal leaves the others as they went.
    for room_id in dict.fromkeys(cmd.room_ids):
        try:
            sent = await send_message(runtime_of(request), principal, room_id, copy, state=request.scope["state"],
                                      forwarded_from=origin)
        except RoomlogError as exc:
            results.append(api.ForwardTarget(room_id=room_id, ok=False,
                                             error={"code": exc.code, "message": exc.message}))
            continue
        results.append(api.ForwardTarget(room_id=room_id, ok=True, message_id=sent.result.message_id,
                                         seq=sent.result.seq))
    return JSON(api.ForwardResult(results=results))


async def toggle_reaction(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.AddReaction)
    seq, added, reactions = await _react(request, principal, cmd.emoji, add=None)
    assert seq is not None  # a toggle always changes something
    return JSON(api.ReactionToggled(message_id=request.path_params["message_id"], emoji=cmd.emoji, added=added,
                                    seq=seq, reactions=reactions))


async def _change_reaction(request: Request, principal: Principal, emoji: str, *, add: bool) -> Response:
    seq, _, reactions = await _react(request, principal, emoji, add=add)
    return JSON(api.ReactionChange(message_id=request.path_params["message_id"], emoji=emoji,
                                   changed=seq is not None, seq=seq, reactions=reactions))


async def _react(
    request: Request, principal: Principal, emoji: str, *, add: bool | None
) -> tuple[int | None, bool, list[api.ReactionCount]]:
    """Add, remove or (add=None) toggle the caller's reaction: (the event's seq or None, whether it is there now,
    the message's reactions)."""
    await runtime_of(request).limiter.admit_send(principal, request.scope["state"])
    message_id = request.path_params["message_id"]
    read = await _read(request, principal, emoji)
    actor = actor_of(principal)
    wanted = not read.reacted if add is None else add
    events = decide_reaction(actor, read.room_role, message_id, read.message, emoji, add=wanted, reacted=read.reacted)
    seq = None
    if events:
        recheck = membership_recheck("message.react", actor, read.room_role)
        seq = (await _append(request, principal, events, recheck=recheck)).events[0].seq
    counts = await reaction_counts(runtime_of(request).pool, [message_id], principal.user_id)
    return seq, wanted, [reaction_count(r) for r in counts.get(message_id, [])]


async def list_reactions(request: Request) -> Response:
    principal = await caller(request)
    row = await _readable_message(request, principal)
    return JSON([api.Reactors(emoji=r["emoji"], count=len(r["user_ids"]), user_ids=r["user_ids"])
                 for r in await reactors(runtime_of(request).pool, row["message_id"])])


_ERRORS = (RoomNotFound, NotAMember, MessageNotFound, RoomWasDeleted)
_MESSAGE = "/rooms/{room_id}/messages/{message_id}"

ENDPOINTS = [
    Endpoint("GET", _MESSAGE, get_message, "One message as it reads now, with its reactions",
             response=api.Message, errors=_ERRORS),
    Endpoint("PATCH", _MESSAGE, edit_message, "Edit a message you sent (a message.edited event)",
             body=api.EditMessage, response=api.MessageChange,
             errors=(*_ERRORS, NotMessageSender, MessageWasDeleted, MessageTooLong)),
    Endpoint("DELETE", _MESSAGE, delete_message,
             "Delete a message: your own, or anyone's as a room or tenant admin (a message.deleted event)",
             response=api.MessageChange, errors=(*_ERRORS, NotRoomAdmin)),
    Endpoint("POST", f"{_MESSAGE}/reactions", add_reaction,
             "React to a message; reacting again with the same emoji changes nothing",
             body=api.AddReaction, response=api.ReactionChange, errors=(*_ERRORS, MessageWasDeleted),
             links=(Link("DELETE", f"{_MESSAGE}/reactions/{{emoji}}"), Link("GET", f"{_MESSAGE}/reactions"))),
    Endpoint("POST", f"{_MESSAGE}/forward", forward_message,
             "Forward a message to rooms you may post to: a new message in each, with forwarded_from; the answer "
             "says per room what happened", body=api.ForwardMessage, response=api.ForwardResult,
             errors=(*_ERRORS, MessageWasDeleted)),
    Endpoint("POST", f"{_MESSAGE}/reactions/toggle", toggle_reaction,
             "Add your reaction if it is not there, else take it back",
             body=api.AddReaction, response=api.ReactionToggled, errors=(*_ERRORS, MessageWasDeleted)),
    Endpoint("GET", f"{_MESSAGE}/reactions", list_reactions, "Who reacted to a message, by emoji",
             response=list[api.Reactors], errors=_ERRORS),
    Endpoint("DELETE", f"{_MESSAGE}/reactions/{{emoji}}", remove_reaction,
             "Take your reaction back; removing one you did not make changes nothing",
             response=api.ReactionChange, errors=(*_ERRORS, MessageWasDeleted)),
]
