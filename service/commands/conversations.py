"""Muting and archiving rooms: load the caller's state of the room, decide, append to the caller's own stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.guards import EndsRoom, MemberOf
from projections.rooms import load_room_state
from projections.streams import user_stream
from projections.user_rooms import user_room_state
from schemas.errors import RoomNotFound
from service.commands.metadata import metadata_for, retry_on_conflict
from service.commands.rooms import actor_of
from service.domain.conversations import decide_archive, decide_clear, decide_mute
from service.domain.rooms import RoomState, decide_delete_room
from service.identity.auth import Principal

if TYPE_CHECKING:
    from service.runtime import Runtime


async def set_muted(runtime: Runtime, principal: Principal, room_id: str, *, mute: bool) -> None:
    """Mute or unmute a room for the caller."""
    await _change(runtime, principal, room_id, mute=mute)


async def set_archived(runtime: Runtime, principal: Principal, room_id: str, *, archive: bool) -> None:
    """Archive or un-archive a room for the caller."""
    await _change(runtime, principal, room_id, archive=archive)


async def clear_history(runtime: Runtime, principal: Principal, room_id: str) -> None:
    """Delete a room's history for the caller up to its current last_seq."""
    await _change(runtime, principal, room_id, clear=True)


async def delete_for_everyone(runtime: Runtime, principal: Principal, room_id: str) -> None:
    """End a room for everyone with a room.deleted event: its content reads as deleted and it takes no more writes."""

    async def attempt() -> None:
        row = await load_room_state(runtime.pool, principal.tenant_id, room_id)
        if row is None:
            raise RoomNotFound("room not found", field="room_id")
        state = RoomState(room_type=row["type"], members=dict(zip(row["ids"], row["roles"], strict=True)),
                          visibility=row["visibility"], deleted=row["deleted"])
        events = decide_delete_room(state, actor_of(principal))
        # At the seq decided on (membership and roles are room events), alone in its batch (EndsRoom).
        await runtime.appender.append(room_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                                      expected_seq=row["last_seq"], guard=EndsRoom(room_id))

    await retry_on_conflict(attempt)


async def _change(
    runtime: Runtime, principal: Principal, room_id: str, *, mute: bool | None = None, archive: bool | None = None,
    clear: bool = False,
) -> None:
    stream_id = user_stream(principal.tenant_id, principal.user_id)

    async def attempt() -> None:
        row = await user_room_state(runtime.pool, principal.tenant_id, principal.user_id, stream_id, room_id)
        if row is None:
            raise RoomNotFound("room not found", field="room_id")
        actor = actor_of(principal)
        if clear:
            events = decide_clear(actor, row["role"], room_id, cleared_seq=row["cleared_seq"],
                                  room_last_seq=row["room_last_seq"])
        elif mute is not None:
            events = decide_mute(actor, row["role"], room_id, muted=row["muted"], mute=mute)
        else:
            events = decide_archive(actor, row["role"], room_id, archived=row["archived"], archive=bool(archive),
                                    room_last_seq=row["room_last_seq"])
        if events:
            # The membership guard re-checks under the room's lock that the caller is still in the room.
            await runtime.appender.append(
                stream_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                expected_seq=row["user_last_seq"], create_stream=True,
                guard=MemberOf(principal.tenant_id, room_id, principal.user_id),
            )

    await retry_on_conflict(attempt)
