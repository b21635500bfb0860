"""Per-user room state read model: which rooms each user muted, archived or cleared (events of the user's own
stream)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import RecordedEvent, RoomArchived, RoomCleared, RoomMuted, RoomUnarchived, RoomUnmuted

# One statement per event, in log order; updated_seq (the user stream's seq) makes a repeat or replay a no-op.
_UPSERT = """
INSERT INTO user_rooms AS u (tenant_id, user_id, room_id, muted, archived, archived_seq, updated_seq, cleared_seq)
VALUES ($1, $2, $3, coalesce($4::boolean, false), coalesce($5::boolean, false), coalesce($6::bigint, 0), $7,
        coalesce($8::bigint, 0))
ON CONFLICT (tenant_id, user_id, room_id) DO UPDATE
SET muted = coalesce($4::boolean, u.muted), archived = coalesce($5::boolean, u.archived),
    archived_seq = coalesce($6::bigint, u.archived_seq), updated_seq = $7,
    cleared_seq = greatest(u.cleared_seq, coalesce($8::bigint, 0))
WHERE u.updated_seq < $7
"""


class UserRoomsProjection:
    name = "user_rooms"
    version = 2
    tables = ("user_rooms",)
    handles = frozenset({"room.muted", "room.unmuted", "room.archived", "room.unarchived", "room.cleared"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE user_rooms (
        tenant_id    text NOT NULL,
        user_id      text NOT NULL,
        room_id      text NOT NULL,
        muted        boolean NOT NULL,
        archived     boolean NOT NULL,
        archived_seq bigint NOT NULL,  -- the room's last_seq when it was archived
        cleared_seq  bigint NOT NULL,  -- history deleted for the user up to here (0: none)
        updated_seq  bigint NOT NULL,
        PRIMARY KEY (tenant_id, user_id, room_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            ev = rec.event
            muted = archived = archived_seq = cleared_seq = None
            if isinstance(ev, RoomMuted | RoomUnmuted):
                muted = isinstance(ev, RoomMuted)
            elif isinstance(ev, RoomArchived):
                archived, archived_seq = True, ev.seq
            elif isinstance(ev, RoomUnarchived):
                archived = False
            elif isinstance(ev, RoomCleared):
                cleared_seq = ev.seq
            else:
                continue
            await conn.execute(_UPSERT, rec.tenant_id, user_of_stream(rec.stream_id), ev.room_id,
                               muted, archived, archived_seq, rec.seq, cleared_seq)


async def user_room_state(
    conn: Queryable, tenant_id: str, user_id: str, user_stream_id: str, room_id: str
) -> asyncpg.Record | None:
    """For a mute or archive: the room's last_seq, the user's role, muted, archived and their stream's last_seq."""
    return await conn.fetchrow(
        "SELECT s.last_seq AS room_last_seq, m.role, coalesce(u.muted, false) AS muted,"
        " coalesce(u.archived, false) AS archived, coalesce(u.cleared_seq, 0) AS cleared_seq,"
        " coalesce((SELECT last_seq FROM streams WHERE stream_id = $3), 0) AS user_last_seq"
        " FROM rooms r JOIN streams s ON s.stream_id = r.room_id"
        " LEFT JOIN members m ON m.room_id = r.room_id AND m.user_id = $2 AND m.active"
        " LEFT JOIN user_rooms u ON u.tenant_id = $1 AND u.user_id = $2 AND u.room_id = r.room_id"
        " WHERE r.room_id = $4 AND r.tenant_id = $1",
        tenant_id, user_id, user_stream_id, room_id,
    )


async def muted_by(conn: Queryable, tenant_id: str, room_id: str) -> frozenset[str]:
    """The users who muted a room."""
    rows = await conn.fetch(
        "SELECT user_id FROM user_rooms WHERE tenant_id = $1 AND room_id = $2 AND muted", tenant_id, room_id
    )
    return frozenset(r["user_id"] for r in rows)


async def cleared_seq(conn: Queryable, tenant_id: str, user_id: str, room_id: str) -> int:
    """Up to which seq the user deleted the room's history for themselves (0: not at all)."""
    value = await conn.fetchval(
        "SELECT cleared_seq FROM user_rooms WHERE tenant_id = $1 AND user_id = $2 AND room_id = $3",
        tenant_id, user_id, room_id,
    )
    return int(value or 0)
