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


# Replay folds a whole batch with these, one statement each over `new_events`, in this order; they do what `apply`
# does event by event (which the append runs): a room's updates after the seq its row has, the newest that set a
# field deciding it, and the first deletion.
_CREATED = """
INSERT INTO rooms (room_id, tenant_id, type, unique_key, name, metadata, created_by, created_at, updated_seq,
                   display_name, description, visibility, who_can_post, retention_days)
SELECT e.data->>'room_id', e.tenant_id, e.data->>'room_type', e.data->>'unique_key', e.data->>'name',
       NULLIF(e.data->'metadata', 'null'::jsonb), e.data->>'created_by', e.created_at, e.seq,
       e.data->>'display_name', e.data->>'description', e.data->>'visibility',
       coalesce(e.data->'settings'->>'who_can_post', 'all_members'),
       (e.data->'settings'->>'message_retention_days')::integer
FROM new_events e WHERE e.type = 'room.created'
ON CONFLICT (room_id) DO NOTHING
"""


def _newest(value: str, condition: str) -> str:
    return f"(array_agg({value} ORDER BY e.seq DESC) FILTER (WHERE {condition}))[1]"


_SETTINGS = "jsonb_typeof(e.data->'settings') = 'object'"
_UPDATED = f"""
UPDATE rooms r SET
    name = CASE WHEN u.set_name THEN u.name ELSE r.name END,
    metadata = CASE WHEN u.set_metadata THEN u.metadata ELSE r.metadata END,
    display_name = CASE WHEN u.set_display_name THEN u.display_name ELSE r.display_name END,
    description = CASE WHEN u.set_description THEN u.description ELSE r.description END,
    who_can_post = coalesce(u.who_can_post, r.who_can_post),
    retention_days = CASE WHEN u.set_settings THEN u.retention_days ELSE r.retention_days END,
    updated_seq = u.seq
FROM (
    SELECT e.stream_id AS room_id, max(e.seq) AS seq,
           bool_or((e.data->>'set_name')::boolean) AS set_name,
           {_newest("e.data->>'name'", "(e.data->>'set_name')::boolean")} AS name,
           bool_or((e.data->>'set_metadata')::boolean) AS set_metadata,
           {_newest("NULLIF(e.data->'metadata', 'null'::jsonb)", "(e.data->>'set_metadata')::boolean")} AS metadata,
           bool_or((e.data->>'set_display_name')::boolean) AS set_display_name,
           {_newest("e.data->>'display_name'", "(e.data->>'set_display_name')::boolean")} AS display_name,
           bool_or((e.data->>'set_description')::boolean) AS set_description,
           {_newest("e.data->>'description'", "(e.data->>'set_description')::boolean")} AS description,
           bool_or({_SETTINGS}) AS set_settings,
           {_newest("e.data->'settings'->>'who_can_post'", _SETTINGS)} AS who_can_post,
           {_newest("(e.data->'settings'->>'message_retention_days')::integer", _SETTINGS)} AS retention_days
    FROM new_events e JOIN rooms cur ON cur.room_id = e.stream_id
    WHERE e.type = 'room.updated' AND e.seq > cur.updated_seq
    GROUP BY e.stream_id
) u
WHERE r.room_id = u.room_id
"""
_DELETED = """
UPDATE rooms r SET deleted_seq = d.seq, deleted_at = d.created_at
FROM (SELECT DISTINCT ON (e.stream_id) e.stream_id, e.seq, e.created_at FROM new_events e
      WHERE e.type = 'room.deleted' ORDER BY e.stream_id, e.seq) d
WHERE r.room_id = d.stream_id AND r.deleted_seq IS NULL
"""


class RoomsProjection:
    name = "rooms"
    version = 5
    tables = ("rooms",)
    handles = frozenset({"room.created", "room.updated", "room.deleted"})
    sql = None  # applied in Python, in the append transaction
    statements = (_CREATED, _UPDATED, _DELETED)  # replay's set-based fold of a batch
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
