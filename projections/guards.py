"""Conditions an append must meet, checked under the stream lock in the append transaction.

A route decides on what it read; a guard re-checks the part that another request could change in
between (membership, a DM's uniqueness), so the rule and the write are one atomic step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from eventstore.append import AppendRequest
from eventstore.types import Connection
from schemas.errors import NotAMember, NotRoomAdmin, RoomExists, RoomlogError, RoomNotFound


@dataclass(frozen=True, slots=True)
class MemberOf:
    """The actor must be an active member of the room (with `role`, when given)."""

    tenant_id: str
    room_id: str
    user_id: str
    role: Literal["admin"] | None = None


@dataclass(frozen=True, slots=True)
class UniqueRoomKey:
    """No room of the tenant may hold this unique key yet (one DM per pair)."""

    tenant_id: str
    unique_key: str


_MEMBERSHIP = """
SELECT q.i, r.room_id IS NOT NULL AS room_exists, m.role
FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS q(i, tenant_id, room_id, user_id)
LEFT JOIN rooms r ON r.room_id = q.room_id AND r.tenant_id = q.tenant_id
LEFT JOIN members m ON m.room_id = q.room_id AND m.user_id = q.user_id AND m.active
"""
_UNIQUE_KEYS = """
SELECT q.i, r.room_id
FROM unnest($1::int[], $2::text[], $3::text[]) AS q(i, tenant_id, unique_key)
JOIN rooms r ON r.tenant_id = q.tenant_id AND r.unique_key = q.unique_key
"""


async def check_guards(conn: Connection, requests: Sequence[AppendRequest]) -> list[RoomlogError | None]:
    """Evaluate every request's guard with one query per guard kind; None where the guard holds."""
    errors: list[RoomlogError | None] = [None] * len(requests)
    member = [(i, r.guard) for i, r in enumerate(requests) if isinstance(r.guard, MemberOf)]
    if member:
        rows = await conn.fetch(
            _MEMBERSHIP,
            [i for i, _ in member],
            [g.tenant_id for _, g in member],
            [g.room_id for _, g in member],
            [g.user_id for _, g in member],
        )
        guards = dict(member)
        for row in rows:
            errors[row["i"]] = membership_error(guards[row["i"]], row["room_exists"], row["role"])
    unique = [(i, r.guard) for i, r in enumerate(requests) if isinstance(r.guard, UniqueRoomKey)]
    if unique:
        rows = await conn.fetch(
            _UNIQUE_KEYS,
            [i for i, _ in unique],
            [g.tenant_id for _, g in unique],
            [g.unique_key for _, g in unique],
        )
        for row in rows:
            errors[row["i"]] = RoomExists("a DM between these users already exists", room_id=row["room_id"])
    return errors


def membership_error(guard: MemberOf, room_exists: bool, role: str | None) -> RoomlogError | None:
    """The error a MemberOf guard yields for what the database holds, or None."""
    if not room_exists:
        return RoomNotFound("room not found", field="room_id")
    if role is None:
        return NotAMember("you are not a member of this room")
    if guard.role == "admin" and role != "admin":
        return NotRoomAdmin("only room admins may do this")
    return None
