"""Rules of REST sync and long-poll: reading a poll's room list, and what joined and left mean."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.api import INT64_MAX
from schemas.errors import ValidationError

MAX_ROOM_ID_CHARS = 64


def parse_room_seqs(text: str, *, max_rooms: int) -> dict[str, int]:
    """`ID:SEQ,ID:SEQ` as {room_id: seq}; a 400 naming `rooms` when empty, malformed, repeated or too long."""
    rooms: dict[str, int] = {}
    for item in text.split(","):
        room_id, sep, seq = item.strip().rpartition(":")
        if not sep or not 1 <= len(room_id) <= MAX_ROOM_ID_CHARS or not seq.isascii() or not seq.isdigit():
            raise ValidationError("rooms must be ROOM_ID:SEQ pairs separated by commas", field="rooms")
        if int(seq) > INT64_MAX:
            raise ValidationError(f"a seq is at most {INT64_MAX}", field="rooms")
        if room_id in rooms:
            raise ValidationError("each room may be listed once", field="rooms")
        rooms[room_id] = int(seq)
    check_room_count(len(rooms), max_rooms=max_rooms)
    return rooms


def check_room_count(count: int, *, max_rooms: int) -> None:
    """A 400 naming `rooms` when a sync or poll names more rooms than one call may."""
    if count > max_rooms:
        raise ValidationError(f"at most {max_rooms} rooms per call", field="rooms")


def joined_and_left(listed: Iterable[str], member_of: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(rooms the user belongs to but did not list, listed rooms the user does not belong to), each sorted.

    A listed room the user left, was removed from, or never belonged to (another tenant's, made up) is
    `left` alike: the client stops following it, and learns nothing about why.
    """
    listed = set(listed)
    return sorted(set(member_of) - listed), sorted(listed - set(member_of))
