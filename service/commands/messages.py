"""Sending messages and recording acks: one implementation for the REST routes and the WebSocket gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventstore.append import StreamNotFound
from projections.guards import MemberOf, PostsNaming, current_membership_error, membership_error
from projections.messages import fetch_message
from projections.receipts import ack_state
from projections.streams import user_stream
from schemas import api
from schemas.errors import RoomNotFound
from schemas.events import Attachment, Event, ForwardedFrom, MessageSent
from service.commands.metadata import metadata_for, retry_on_conflict
from service.domain.acks import decide_ack, decide_read
from service.domain.messages import (
    check_attachable,
    check_retry,
    check_thread_root,
    decide_send,
    send_idempotency_key,
)
from service.identity.auth import Principal
from service.identity.ids import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime

@dataclass(frozen=True)
class Sent:
    result: api.SendResult
    duplicate: bool


async def send_message(
    runtime: Runtime, principal: Principal, room_id: str, cmd: api.SendMessage, *, state: dict[str, Any],
    forwarded_from: ForwardedFrom | None = None,
) -> Sent:
    """Append a message to a room (or return the first result of a retried client_msg_id).

    A client_msg_id repeated with a different body is 409 IDEMPOTENCY_KEY_REUSED.

    Counts against the sender's message limit first (429); `state` receives the limit decision.
    """
    await runtime.limiter.admit_send(principal, state)
    attachments = await _attachments(runtime, principal, cmd.attachments) if cmd.attachments else []
    event = decide_send(principal.user_id, cmd, new_id("msg"), attachments=attachments, tenant_role=principal.role,
                        forwarded_from=forwarded_from)
    if cmd.thread_id is not None:
        await _check_thread(runtime, principal, room_id, cmd.thread_id)
    # Mentioned users must be members: the append checks it under the room's lock, with the sender's membership.
    named = tuple(m for m in event.mentions if m not in api.ROOM_MENTIONS)
    try:
        # Membership is checked under the room's lock, in the same transaction as the write.
        result = await runtime.appender.append(
            room_id, [event], tenant_id=principal.tenant_id, metadata=metadata_for(principal),
            idempotency_key=send_idempotency_key(principal.user_id, cmd.client_msg_id),
            # It also checks that attachments are still the sender's confirmed uploads and mentioned users members.
            guard=PostsNaming(principal.tenant_id, room_id, principal.user_id, tuple(cmd.attachments), named)
            if attachments or named else MemberOf(principal.tenant_id, room_id, principal.user_id, "poster"),
        )
    except StreamNotFound:
        raise RoomNotFound("room not found", field="room_id") from None
    sent = result.events[0]
    assert isinstance(sent.event, MessageSent)
    if result.duplicate:
        check_retry(sent.event, cmd)
    return Sent(
        api.SendResult(message_id=sent.event.message_id, seq=sent.seq, created_at=sent.created_at),
        duplicate=result.duplicate,
    )


async def _attachments(runtime: Runtime, principal: Principal, media_ids: list[str]) -> list[Attachment]:
    """The confirmed uploads of the sender's that `media_ids` names, in that order; a 400 for any other id."""
    by_id = await runtime.confirmed_media.of(principal.tenant_id, principal.user_id, media_ids)
    check_attachable(media_ids, list(by_id))
    return [by_id[m] for m in media_ids]


async def _check_thread(runtime: Runtime, principal: Principal, room_id: str, thread_id: str) -> None:
    """A reply's root must be a top-level message of the room; outsiders learn only that they are outsiders."""
    error = await current_membership_error(runtime.pool, MemberOf(principal.tenant_id, room_id, principal.user_id))
    if error is not None:
        raise error
    root = await fetch_message(runtime.pool, room_id, thread_id)
    check_thread_root(thread_id, root["thread_id"] if root is not None else None, found=root is not None)


async def record_ack(runtime: Runtime, principal: Principal, room_id: str, seq: int) -> None:
    """Move the caller's delivered position in a room forward to `seq` (never backwards)."""
    await _record_position(runtime, principal, room_id, seq, read=False)


async def record_read(runtime: Runtime, principal: Principal, room_id: str, seq: int) -> None:
    """Move the caller's read position in a room forward to `seq` (never backwards; it implies delivery)."""
    await _record_position(runtime, principal, room_id, seq, read=True)


async def _record_position(runtime: Runtime, principal: Principal, room_id: str, seq: int, *, read: bool) -> None:
    stream_id = user_stream(principal.tenant_id, principal.user_id)
    guard = MemberOf(principal.tenant_id, room_id, principal.user_id)

    async def attempt() -> None:
        row = await ack_state(runtime.pool, principal.tenant_id, principal.user_id, stream_id, room_id)
        if row is None:
            raise RoomNotFound("room not found", field="room_id")
        error = membership_error(guard, True, row["role"])
        if error is not None:
            raise error
        last = row["room_last_seq"]
        events: Sequence[Event] = (
            decide_read(room_id, seq, room_last_seq=last, read_seq=row["read_seq"]) if read
            else decide_ack(room_id, seq, room_last_seq=last, acked_seq=row["acked_seq"])
        )
        if events:
            await runtime.appender.append(
                stream_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                expected_seq=row["user_last_seq"], create_stream=True, guard=guard,
            )

    await retry_on_conflict(attempt)
