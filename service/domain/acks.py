"""Ack rules: a user's delivered position in a room only moves forward and never past the room's end."""

from __future__ import annotations

from schemas.errors import ValidationError
from schemas.events import AckRecorded


def decide_ack(room_id: str, seq: int, *, room_last_seq: int, acked_seq: int) -> list[AckRecorded]:
    """An ack event when `seq` advances the user's position; nothing when it does not."""
    if seq > room_last_seq:
        raise ValidationError(f"seq {seq} is beyond the room's last_seq {room_last_seq}", field="seq")
    if seq <= acked_seq:
        return []
    return [AckRecorded(room_id=room_id, seq=seq)]
