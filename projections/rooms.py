"""Rooms read model: type, name, display name, description, metadata and the DM uniqueness key of every room."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent, RoomCreated, RoomDeleted, RoomSettings, RoomUpdated

_json = msgspec.json.Encoder()


def _jsonb(value: object) -> str | None:
    return None if value is None else _json.encode(value).decode()


class RoomsProjection:
    name = "rooms"
    version = 5
    tables = ("rooms",)
    handles = frozenset({"room.created", "room.updated", "room.deleted"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE rooms (
        room_id    text PRIMARY KEY,
        tenant_id  text NOT NULL,
        type       text NOT NULL,
        unique_key text,
        name       text,
        metadata   jsonb,
        display_name text,
        description text,
        visibility text,
        who_can_post text NOT NULL DEFAULT 'all_members',
        retention_days integer,  -- settings.message_retention_days
        created_by text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_seq bigint NOT NULL,
        deleted_seq bigint,  -- room.deleted: no more writes (rl_guard_failures, migration 031)
        deleted_at timestamptz,
        UNIQUE (tenant_id, unique_key)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:
            ev = rec.event
            if isinstance(ev, RoomCreated):
                settings = ev.settings or RoomSettings()
                await conn.execute(
                    "INSERT INTO rooms (room_id, tenant_id, type, unique_key, name, metadata, created_by,"
                    " created_at, updated_seq, display_name, description, visibility, who_can_post, retention_days)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14)"
                    " ON CONFLICT (room_id) DO NOTHING",
                    ev.room_id, rec.tenant_id, ev.room_type, ev.unique_key, ev.name, _jsonb(ev.metadata),
                    ev.created_by, rec.created_at, rec.seq, ev.display_name, ev.description, ev.visibility,
                    settings.who_can_post, settings.message_retention_days,
                )
            elif isinstance(ev, RoomUpdated):
                # The seq guard makes a replayed or repeated update a no-op.
                await conn.execute(
                    "UPDATE rooms SET name = CASE WHEN $2 THEN $3 ELSE name END,"
                    " metadata = CASE WHEN $4 THEN $5::jsonb ELSE metadata END, updated_seq = $6,"
                    " display_name = CASE WHEN $7 THEN $8 ELSE display_name END,"
                    " description = CASE WHEN $9 THEN $10 ELSE description END,"
                    " who_can_post = coalesce($11, who_can_post),"
                    " retention_days = CASE WHEN $12 THEN $13 ELSE retention_days END"
                    " WHERE room_id = $1 AND updated_seq < $6",
                    rec.stream_id, ev.set_name, ev.name, ev.set_metadata, _jsonb(ev.metadata), rec.seq,
                    ev.set_display_name, ev.display_name, ev.set_description, ev.description,
                    ev.settings.who_can_post if ev.settings is not None else None, ev.settings is not None,
                    ev.settings.message_retention_days if ev.settings is not None else None,
                )
            elif isinstance(ev, RoomDeleted):
                await conn.execute(
                    "UPDATE rooms SET deleted_seq = $2, deleted_at = $3 WHERE room_id = $1 AND deleted_seq IS NULL",
                    rec.stream_id, rec.seq, rec.created_at,
                )


_ROOM = """
SELECT r.room_id, r.type, r.unique_key, r.name, r.metadata::text AS metadata, s.last_seq, r.created_at,
       r.created_by, r.display_name, r.description, r.visibility, r.who_can_post, r.retention_days,
       r.deleted_at
FROM rooms r JOIN streams s ON s.stream_id = r.room_id
"""


async def fetch_room(conn: Queryable, tenant_id: str, room_id: str) -> asyncpg.Record | None:
    """One room of the tenant with its last_seq, or None."""
    return await conn.fetchrow(_ROOM + " WHERE r.room_id = $1 AND r.tenant_id = $2", room_id, tenant_id)


async def load_room_state(
    conn: Queryable, tenant_id: str, room_id: str
) -> asyncpg.Record | None:
    """type, visibility, last_seq, whether it was deleted, and the active members' ids and roles of a room, read in
    one snapshot."""
    return await conn.fetchrow(
        "SELECT r.type, r.visibility, s.last_seq, r.deleted_seq IS NOT NULL AS deleted,"
        " array(SELECT m.user_id FROM members m WHERE m.room_id = r.room_id AND m.active ORDER BY m.user_id) AS ids,"
        " array(SELECT m.role FROM members m WHERE m.room_id = r.room_id AND m.active ORDER BY m.user_id) AS roles"
        " FROM rooms r JOIN streams s ON s.stream_id = r.room_id WHERE r.room_id = $1 AND r.tenant_id = $2",
        room_id, tenant_id,
    )


async def public_channels(
    conn: Queryable, tenant_id: str, *, limit: int, offset: int, preview_chars: int
) -> list[asyncpg.Record]:
    """The tenant's public channels by last activity, newest first, with their member count and newest message."""
    return await conn.fetch(
        """
        SELECT r.room_id, r.type, r.unique_key, r.name, r.metadata::text AS metadata, s.last_seq, r.created_at,
               r.created_by, r.display_name, r.description, r.visibility, r.who_can_post, r.retention_days,
               (SELECT count(*) FROM members mc WHERE mc.room_id = r.room_id AND mc.active) AS member_count,
               a.at AS last_message_at, a.message_id AS last_message_id, a.seq AS last_message_seq,
               lm.sender_id AS last_message_sender, left(lm.content, $4) AS last_message_preview,
               lm.deleted_seq IS NOT NULL AS last_message_deleted
        FROM rooms r JOIN streams s ON s.stream_id = r.room_id
        LEFT JOIN room_activity a ON a.room_id = r.room_id
        LEFT JOIN LATERAL (SELECT p.sender_id, p.content, p.deleted_seq FROM messages p
                           WHERE p.room_id = r.room_id AND p.seq = a.seq LIMIT 1) lm ON true
        WHERE r.tenant_id = $1 AND r.type = 'channel' AND r.visibility = 'public' AND r.deleted_seq IS NULL
        ORDER BY coalesce(a.at, r.created_at) DESC, r.room_id DESC
        LIMIT $2 OFFSET $3
        """,
        tenant_id, limit, offset, preview_chars,
    )
