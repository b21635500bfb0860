"""The inbox: a user's rooms as a client renders them, read from the rooms, members, messages, user_rooms and
read_marks read models without counting messages.

Unread counts are differences of counters (the room's messages now less those up to the read position, kept in
read_marks when the user read; the same for the user's own messages; less deleted messages of others after
it), so each room costs a few primary-key lookups whatever its size; mentions likewise, from the counters of
projections/mentions.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from eventstore.types import Queryable
from projections.mentions import unread_mentions
from projections.messages import MESSAGE_COLUMNS

# `x` is a row with room_id and `rm` the user's read_marks row of it (none: nothing read); $1 is the tenant and $2
# the user. The unread messages are the room's count less what the user had read (read_marks), less their own
# since; the unread mentions the counters of projections/mentions.py less what their read passed over; both less
# the others' deleted messages since: primary-key lookups, and one scan of the deleted ones (a partial index,
# usually empty).
_COUNTS = f"""
LEFT JOIN LATERAL (
    SELECT count(*) AS messages, count(*) FILTER (WHERE p.mentions && ARRAY[$2, '@room', '@here']) AS mentions
    FROM messages p WHERE p.room_id = x.room_id AND p.seq > coalesce(rm.seq, 0)
      AND p.deleted_seq IS NOT NULL AND p.sender_id <> $2
) d ON true
LEFT JOIN LATERAL (
    SELECT coalesce((SELECT n.messages FROM message_counts n WHERE n.room_id = x.room_id AND n.sender_id = ''), 0)
         - coalesce(rm.ordinal, 0)
         - coalesce((SELECT n.messages FROM message_counts n WHERE n.room_id = x.room_id AND n.sender_id = $2), 0)
         + coalesce(rm.own_ordinal, 0)
         - d.messages AS unread_count,
           {unread_mentions("x.room_id", "$2")} - d.mentions AS mention_count
) c ON true
"""

_ARCHIVED = "(coalesce(u.archived, false) AND (coalesce(u.muted, false) OR coalesce(a.seq, 0) <= u.archived_seq))"

# A room the user cleared is listed again once a message arrives after what they cleared.
_VISIBLE = "(coalesce(u.cleared_seq, 0) = 0 OR coalesce(a.seq, 0) > u.cleared_seq)"

# The order is decided over the user's rooms with only what it needs; the rest is read for the page's rows.
_PAGE = f"""
WITH x AS (
    SELECT r.room_id, coalesce(a.at, r.created_at) AS activity_at,
           a.at AS last_message_at, a.message_id AS last_message_id, a.seq AS last_message_seq,
           coalesce(u.muted, false) AS is_muted, {_ARCHIVED} AS is_archived
    FROM members m
    JOIN rooms r ON r.room_id = m.room_id
    LEFT JOIN room_activity a ON a.room_id = r.room_id
    LEFT JOIN user_rooms u ON u.tenant_id = m.tenant_id AND u.user_id = m.user_id AND u.room_id = m.room_id
    WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.active
      AND ($3::text IS NULL OR r.type = $3)
      AND ($4::boolean IS NULL OR {_ARCHIVED} = $4)
      AND ($5::boolean IS NULL OR coalesce(u.muted, false) = $5)
      AND ($6::timestamptz IS NULL OR (coalesce(a.at, r.created_at), r.room_id) < ($6, $7::text))
      AND ($10::text IS NULL OR r.room_id = $10)
      AND ($10::text IS NOT NULL OR ({_VISIBLE} AND r.deleted_seq IS NULL))
    ORDER BY activity_at DESC, r.room_id DESC
    LIMIT $8 OFFSET $9
)
SELECT x.*, r.type, r.unique_key, r.name, r.metadata::text AS metadata, s.last_seq, r.created_at,
       r.created_by, r.display_name, r.description, r.visibility, r.who_can_post, r.retention_days, r.deleted_at,
       coalesce(rm.seq, 0) AS read_seq, lm.sender_id AS last_message_sender,
       CASE WHEN lm.expired THEN '' ELSE left(lm.content, $11) END AS last_message_preview,
       lm.deleted_seq IS NOT NULL OR lm.expired AS last_message_deleted,
       (SELECT count(*) FROM members mc WHERE mc.room_id = x.room_id AND mc.active) AS member_count,
       c.unread_count, c.mention_count
FROM x
JOIN rooms r ON r.room_id = x.room_id
JOIN streams s ON s.stream_id = x.room_id
LEFT JOIN read_marks rm ON rm.tenant_id = $1 AND rm.user_id = $2 AND rm.room_id = x.room_id
-- LIMIT keeps this a per-row index probe: a join could be planned as a scan of every message.
-- A message past the room's retention reads as deleted before the retention job has redacted it ($12: now).
LEFT JOIN LATERAL (SELECT p.sender_id, p.content, p.deleted_seq,
                          coalesce(p.created_at < $12::timestamptz - make_interval(days => r.retention_days), false)
                          AS expired
                   FROM messages p
                   WHERE p.room_id = x.room_id AND p.seq = x.last_message_seq LIMIT 1) lm ON true
{_COUNTS}
ORDER BY x.activity_at DESC, x.room_id DESC
"""

PREVIEW_CHARS = 140


@dataclass(frozen=True)
class InboxFilter:
    """Which of a user's rooms the inbox lists; None means either."""

    type: str | None = None
    archived: bool | None = False
    muted: bool | None = None


async def inbox_page(
    conn: Queryable,
    tenant_id: str,
    user_id: str,
    *,
    where: InboxFilter,
    after: tuple[datetime, str] | None,
    limit: int,
    offset: int = 0,
    now: datetime | None = None,
) -> list[asyncpg.Record]:
    """The user's rooms by last activity, newest first, after the `(activity_at, room_id)` cursor if given; given
    `now`, a last message past its room's retention reads as deleted."""
    return await conn.fetch(
        _PAGE, tenant_id, user_id, where.type, where.archived, where.muted,
        after[0] if after else None, after[1] if after else None, limit, offset, None, PREVIEW_CHARS, now,
    )


async def inbox_room(
    conn: Queryable, tenant_id: str, user_id: str, room_id: str, *, now: datetime | None = None
) -> asyncpg.Record | None:
    """One room of the user's inbox (archived or not), or None when they are not an active member."""
    return await conn.fetchrow(
        _PAGE, tenant_id, user_id, None, None, None, None, None, 1, 0, room_id, PREVIEW_CHARS, now,
    )


_UNREAD = f"""
WITH x AS (
    SELECT m.room_id, s.last_seq, coalesce(rm.seq, 0) AS read_seq, rm.ordinal, rm.own_ordinal,
           coalesce(u.muted, false) AS is_muted,
           coalesce(a.at, r.created_at) AS activity_at
    FROM members m
    JOIN rooms r ON r.room_id = m.room_id
    JOIN streams s ON s.stream_id = m.room_id
    LEFT JOIN room_activity a ON a.room_id = m.room_id
    LEFT JOIN user_rooms u ON u.tenant_id = m.tenant_id AND u.user_id = m.user_id AND u.room_id = m.room_id
    LEFT JOIN read_marks rm ON rm.tenant_id = m.tenant_id AND rm.user_id = m.user_id AND rm.room_id = m.room_id
    WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.active AND {_VISIBLE} AND r.deleted_seq IS NULL
    ORDER BY activity_at DESC, m.room_id DESC
    LIMIT $3
)
SELECT x.room_id, x.last_seq, x.read_seq, x.is_muted, c.unread_count, c.mention_count
FROM x CROSS JOIN LATERAL (SELECT x.read_seq AS seq, x.ordinal, x.own_ordinal) rm
{_COUNTS}
ORDER BY x.activity_at DESC, x.room_id DESC
"""


async def unread_of_user(conn: Queryable, tenant_id: str, user_id: str, *, limit: int) -> list[asyncpg.Record]:
    """The user's `limit` most recently active rooms (archived ones too) with their unread and mention counts."""
    return await conn.fetch(_UNREAD, tenant_id, user_id, limit)


async def reading_positions(
    conn: Queryable, tenant_id: str, user_id: str, room_ids: list[str]
) -> dict[str, tuple[int, int, int]]:
    """Per room: (the user's read seq, unread messages after it, messages after it that mention the user).

    Unread are the messages of others after the read seq that are not deleted.
    """
    rows = await conn.fetch(
        f"""
        SELECT x.room_id, coalesce(rm.seq, 0) AS read_seq, c.unread_count, c.mention_count
        FROM unnest($3::text[]) AS x(room_id)
        LEFT JOIN read_marks rm ON rm.tenant_id = $1 AND rm.user_id = $2 AND rm.room_id = x.room_id
        {_COUNTS}
        """,
        tenant_id, user_id, room_ids,
    )
    return {r["room_id"]: (r["read_seq"], r["unread_count"], r["mention_count"]) for r in rows}


_MENTIONS = f"""
SELECT mb.room_id, p.* FROM members mb
LEFT JOIN user_rooms u ON u.tenant_id = mb.tenant_id AND u.user_id = mb.user_id AND u.room_id = mb.room_id
CROSS JOIN LATERAL (
    SELECT {MESSAGE_COLUMNS} FROM messages
    WHERE room_id = mb.room_id AND seq > coalesce(u.cleared_seq, 0)
      AND mentions IS NOT NULL AND mentions && ARRAY[$2, '@room', '@here']
      AND deleted_seq IS NULL AND sender_id <> $2
    ORDER BY seq DESC LIMIT $3
) p
WHERE mb.tenant_id = $1 AND mb.user_id = $2 AND mb.active
ORDER BY p.created_at DESC, p.message_id DESC
LIMIT $3
"""


async def mentions_of(conn: Queryable, tenant_id: str, user_id: str, *, limit: int) -> list[asyncpg.Record]:
    """The newest `limit` messages of others, not deleted, that mention the user in their rooms, newest first."""
    return await conn.fetch(_MENTIONS, tenant_id, user_id, limit)
