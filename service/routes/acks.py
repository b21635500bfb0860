"""Receipts: delivery acks and read positions (events in the user's own stream), and who got how far in a room."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.inbox import reading_positions
from projections.receipts import room_receipts
from schemas import api
from schemas.errors import NotAMember, RoomNotFound, RoomWasDeleted
from service.commands.messages import record_ack, record_read
from service.commands.rooms import require_member
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, runtime_of


async def post_ack(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.Ack)
    await record_ack(runtime_of(request), principal, cmd.room_id, cmd.seq)
    return JSON(api.Success())


async def mark_read(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    cmd = await body_as(request, api.MarkRead)
    runtime = runtime_of(request)
    await record_read(runtime, principal, room_id, cmd.seq)
    [(read_seq, unread, mentions)] = (await reading_positions(runtime.pool, principal.tenant_id,
                                                              principal.user_id, [room_id])).values()
    return JSON(api.ReadState(room_id=room_id, read_seq=read_seq, unread_count=unread, mention_count=mentions))


async def get_receipts(request: Request) -> Response:
    principal = await caller(request)
    room_id = request.path_params["room_id"]
    await require_member(request, principal, room_id)
    rows = await room_receipts(runtime_of(request).pool, principal.tenant_id, room_id)
    return JSON([api.Receipt(user_id=r["user_id"], delivered_seq=r["delivered_seq"], read_seq=r["read_seq"],
                             read_at=r["read_at"]) for r in rows])


ENDPOINTS = [
    Endpoint("POST", "/acks", post_ack, "Confirm delivery of a room up to a seq (never moves backwards)",
             body=api.Ack, response=api.Success, errors=(RoomNotFound, NotAMember)),
    Endpoint("POST", "/rooms/{room_id}/read", mark_read,
             "Mark a room read up to a seq (never moves backwards; implies delivery); returns what is still unread",
             body=api.MarkRead, response=api.ReadState, errors=(RoomNotFound, NotAMember, RoomWasDeleted)),
    Endpoint("GET", "/rooms/{room_id}/receipts", get_receipts, "How far each member has received and read the room",
             response=list[api.Receipt], errors=(RoomNotFound, NotAMember)),
]
