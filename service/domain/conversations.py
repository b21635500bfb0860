"""Per-user conversation rules: muting, archiving and clearing a room one is a member of (events of one's own
stream)."""

from __future__ import annotations

from schemas.events import Event, RoomArchived, RoomCleared, RoomMuted, RoomUnarchived, RoomUnmuted
from service.domain.rooms import Actor, authorize_in_room


def decide_mute(actor: Actor, room_role: str | None, room_id: str, *, muted: bool, mute: bool) -> list[Event]:
    """Mute or unmute a room; asking for what already holds records nothing."""
    authorize_in_room("room.personalize", actor, room_role)
    if muted == mute:
        return []
    return [RoomMuted(room_id=room_id) if mute else RoomUnmuted(room_id=room_id)]


def decide_archive(
    actor: Actor, room_role: str | None, room_id: str, *, archived: bool, archive: bool, room_last_seq: int
) -> list[Event]:
    """Archive a room at its current last_seq, or un-archive it.

    Archiving again records the newer position (the room may have come back with a new message since); un-archiving
    a room that is not archived records nothing.
    """
    authorize_in_room("room.personalize", actor, room_role)
    if archive:
        return [RoomArchived(room_id=room_id, seq=room_last_seq)]
    return [RoomUnarchived(room_id=room_id)] if archived else []


def decide_clear(
    actor: Actor, room_role: str | None, room_id: str, *, cleared_seq: int, room_last_seq: int
) -> list[Event]:
    """Delete the room's history for oneself up to its last_seq; nothing new since the last clear records nothing."""
    authorize_in_room("room.personalize", actor, room_role)
    return [RoomCleared(room_id=room_id, seq=room_last_seq)] if room_last_seq > cleared_seq else []
