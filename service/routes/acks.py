"""Delivery acks: a user confirms a room up to a seq; the ack is an event in the user's own stream."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.guards import MemberOf, membership_error
from projections.receipts import ack_state
from projections.streams import user_stream
from schemas import api
from schemas.errors import NotAMember, RoomNotFound
from service.commands import metadata_for, retry_on_conflict
from service.domain.acks import decide_ack
from service.endpoints import Endpoint
from service.http import JSON, body_as, caller, runtime_of


async def post_ack(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, api.Ack)
    runtime = runtime_of(request)
    stream_id = user_stream(principal.tenant_id, principal.user_id)
    guard = MemberOf(principal.tenant_id, cmd.room_id, principal.user_id)

    async def attempt() -> None:
        row = await ack_state(runtime.pool, principal.tenant_id, principal.user_id, stream_id, cmd.room_id)
        if row is None:
            raise RoomNotFound("room not found", field="room_id")
        error = membership_error(guard, True, row["role"])
        if error is not None:
            raise error
        events = decide_ack(cmd.room_id, cmd.seq, room_last_seq=row["room_last_seq"], acked_seq=row["acked_seq"])
        if events:
            await runtime.appender.append(
                stream_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                expected_seq=row["user_last_seq"], create_stream=True, guard=guard,
            )

    await retry_on_conflict(attempt)
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/acks", post_ack, "Confirm delivery of a room up to a seq (never moves backwards)",
             body=api.Ack, response=api.Success, errors=(RoomNotFound, NotAMember)),
]
