"""Delivery acks: a user confirms a room up to a seq; the ack is an event in the user's own stream."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import NotAMember, RoomNotFound
from service.endpoints import Endpoint
from service.http import JSON, body_as, caller, runtime_of
from service.messaging import record_ack


async def post_ack(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.Ack)
    await record_ack(runtime_of(request), principal, cmd.room_id, cmd.seq)
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/acks", post_ack, "Confirm delivery of a room up to a seq (never moves backwards)",
             body=api.Ack, response=api.Success, errors=(RoomNotFound, NotAMember)),
]
