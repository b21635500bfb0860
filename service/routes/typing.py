"""Typing over REST, beside the WebSocket's typing frames: an ephemeral signal on NATS, never an event."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import NotAMember, RoomNotFound, RoomWasDeleted
from schemas.realtime import TypingSignal
from service.commands.rooms import require_member
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, runtime_of


async def set_typing(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.TypingUpdate)
    await require_member(request, principal, room_id)
    signal = TypingSignal(room_id=room_id, user_id=principal.user_id, typing=cmd.typing)
    # Best effort, like the frames: while NATS is away nobody hears it, and it would be stale by its return.
    await runtime_of(request).realtime.hub.publish_typing(principal.tenant_id, signal)
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/rooms/{room_id}/typing", set_typing,
             "Tell the room the caller is typing (it expires by itself after a few seconds) or stopped",
             body=api.TypingUpdate, response=api.Success, errors=(RoomNotFound, NotAMember, RoomWasDeleted)),
]
