"""Room membership read model: who is in which room, with which role; left members stay as inactive rows."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import MemberJoined, MemberRemoved, RecordedEvent

# Only a newer event (higher seq of the same room) may change a row: replays and repeats are no-ops.
_UPSERT = """
INSERT INTO members AS m (room_id, user_id, tenant_id, role, active, joined_at, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (room_id, user_id) DO UPDATE
SET role = coalesce(EXCLUDED.role, m.role), active = EXCLUDED.active,
    joined_at = CASE WHEN EXCLUDED.active AND NOT m.active THEN EXCLUDED.joined_at ELSE m.joined_at END,
    updated_seq = EXCLUDED.updated_seq
WHERE m.updated_seq < EXCLUDED.updated_seq
"""


class MembersProjection:
    name = "members"
    version = 1
    tables = ("members",)
    handles = frozenset({"member.joined", "member.removed"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE members (
        room_id     text NOT NULL,
        user_id     text NOT NULL,
        tenant_id   text NOT NULL,
        role        text NOT NULL,
        active      boolean NOT NULL,
        joined_at   timestamptz NOT NULL,
        updated_seq bigint NOT NULL,
        PRIMARY KEY (room_id, user_id)
    );
    CREATE INDEX members_by_user ON members (tenant_id, user_id) WHERE active;
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for rec in events:
            ev = rec.event
            if isinstance(ev, MemberJoined):
                rows.append((rec.stream_id, ev.user_id, rec.tenant_id, ev.role, True, rec.created_at, rec.seq))
            elif isinstance(ev, MemberRemoved):
                rows.append((rec.stream_id, ev.user_id, rec.tenant_id, "member", False, rec.created_at, rec.seq))
        if rows:
            await conn.executemany(_UPSERT, rows)


async def access_of(
    conn: Queryable, tenant_id: str, room_id: str, user_id: str
) -> tuple[bool, str | None]:
    """(room exists in this tenant, the user's active role or None)."""
    row = await conn.fetchrow(
        "SELECT m.role FROM rooms r LEFT JOIN members m ON m.room_id = r.room_id AND m.user_id = $3 AND m.active"
        " WHERE r.room_id = $1 AND r.tenant_id = $2",
        room_id, tenant_id, user_id,
    )
    return (row is not None, row["role"] if row is not None else None)


async def list_members(conn: Queryable, tenant_id: str, room_id: str) -> list[asyncpg.Record]:
    """Active members of a room in the order they joined, with their display name and avatar (when registered)."""
    return await conn.fetch(
        "SELECT m.user_id, m.role, m.joined_at, u.display_name, u.avatar_url FROM members m"
        " LEFT JOIN users u ON u.tenant_id = $1 AND u.user_id = m.user_id"
        " WHERE m.room_id = $2 AND m.active ORDER BY m.joined_at, m.user_id",
        tenant_id, room_id,
    )


_ACTIVE_ROOMS = """
SELECT m.room_id, s.last_seq FROM members m JOIN streams s ON s.stream_id = m.room_id
WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.active AND ($3::text[] IS NULL OR m.room_id = ANY($3::text[]))
"""


async def active_rooms(
    conn: Queryable, tenant_id: str, user_id: str, *, among: Sequence[str] | None = None
) -> dict[str, int]:
    """The rooms the user is an active member of (only those `among`, when given), with each one's last_seq."""
    rows = await conn.fetch(_ACTIVE_ROOMS, tenant_id, user_id, list(among) if among is not None else None)
    return {r["room_id"]: r["last_seq"] for r in rows}
