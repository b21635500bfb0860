"""Ack and read rules: a user's delivered and read positions in a room only move forward, never past its end."""

from __future__ import annotations

from schemas.errors import ValidationError
from schemas.events import AckRecorded, ReadRecorded


def decide_ack(room_id: str, seq: int, *, room_last_seq: int, acked_seq: int) -> list[AckRecorded]:
    """An ack event when `seq` advances the user's delivered position; nothing when it does not."""
    return [AckRecorded(room_id=room_id, seq=seq)] if _advances(seq, room_last_seq, acked_seq) else []


def decide_read(room_id: str, seq: int, *, room_last_seq: int, read_seq: int) -> list[ReadRecorded]:
    """A read event when `seq` advances the user's read position; nothing when it does not."""
    return [ReadRecorded(room_id=room_id, seq=seq)] if _advances(seq, room_last_seq, read_seq) else []


def _advances(seq: int, room_last_seq: int, position: int) -> bool:
    if seq > room_last_seq:
        raise ValidationError(f"seq {seq} is beyond the room's last_seq {room_last_seq}", field="seq")
    return seq > position
