"""Messages read model: one row per sent message as it reads now (edits applied, deletions redacted),
and the reactions on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg
import msgspec

from eventstore.read import read_stream
from eventstore.types import Chained, Connection, Queryable
from projections.base import apply_statements
from schemas.events import MessageEdited, MessageSent, RecordedEvent

# Each statement runs inside the append statement over the rows it just wrote (as sibling CTEs, which
# all see the tables as before the append), and in replay one after the other over rows read back.
# In an append, a message's edits, deletion and reactions never share a batch with its message.sent:
# each is decided after reading the committed message.

# A message's ordinal (its place among the room's messages) and sender ordinal (among its sender's there)
# come from counters in message_counts (sender_id '' counts the whole room). The append statement's
# snapshot is taken before the stream's lock is granted, so it may miss a concurrent append that committed
# meanwhile; the counter's upsert instead updates the newest committed row under its lock. A batch counted
# already (replayed twice) counts nothing and inserts nothing: counters move only past their last_seq.
_COUNT_SENT = """
INSERT INTO message_counts AS c (room_id, sender_id, messages, last_seq)
SELECT e.stream_id, '', count(*), max(e.seq) FROM new_events e WHERE e.type = 'message.sent' GROUP BY e.stream_id
UNION ALL
SELECT e.stream_id, e.data->>'sender_id', count(*), max(e.seq) FROM new_events e WHERE e.type = 'message.sent'
GROUP BY e.stream_id, e.data->>'sender_id'
ON CONFLICT (room_id, sender_id) DO UPDATE SET messages = c.messages + EXCLUDED.messages, last_seq = EXCLUDED.last_seq
WHERE c.last_seq < EXCLUDED.last_seq
RETURNING c.room_id, c.sender_id, c.messages
"""

_INSERT_SENT = Chained(steps=(("messages_counted", _COUNT_SENT),), final="""
INSERT INTO messages (message_id, room_id, tenant_id, seq, sender_id, content, meta, client_msg_id, created_at,
                      thread_id, message_type, attachments, mentions, ordinal, sender_ordinal,
                      forwarded_room_id, forwarded_message_id)
SELECT e.data->>'message_id', e.stream_id, e.tenant_id, e.seq, e.data->>'sender_id', e.data->>'content',
       NULLIF(e.data->'meta', 'null'::jsonb), e.data->>'client_msg_id', e.created_at, e.data->>'thread_id',
       coalesce(e.data->>'message_type', 'text'), e.data->'attachments',
       CASE WHEN e.data ? 'mentions' THEN ARRAY(SELECT jsonb_array_elements_text(e.data->'mentions')) END,
       r.messages - count(*) OVER (PARTITION BY e.stream_id)
         + row_number() OVER (PARTITION BY e.stream_id ORDER BY e.seq),
       s.messages - count(*) OVER (PARTITION BY e.stream_id, e.data->>'sender_id')
         + row_number() OVER (PARTITION BY e.stream_id, e.data->>'sender_id' ORDER BY e.seq),
       e.data->'forwarded_from'->>'room_id', e.data->'forwarded_from'->>'message_id'
FROM new_events e
JOIN messages_counted r ON r.room_id = e.stream_id AND r.sender_id = ''
JOIN messages_counted s ON s.room_id = e.stream_id AND s.sender_id = e.data->>'sender_id'
WHERE e.type = 'message.sent'
ON CONFLICT DO NOTHING
""")

# The inbox's one row per room: its newest message (the message row holds how it reads now, so edits and
# deletions never touch this row, and a batch changes it once).
_UPSERT_ACTIVITY = """
INSERT INTO room_activity AS a (room_id, tenant_id, message_id, seq, sender_id, at)
SELECT DISTINCT ON (e.stream_id) e.stream_id, e.tenant_id, e.data->>'message_id', e.seq, e.data->>'sender_id',
       e.created_at
FROM new_events e WHERE e.type = 'message.sent'
ORDER BY e.stream_id, e.seq DESC
ON CONFLICT (room_id) DO UPDATE
SET message_id = EXCLUDED.message_id, seq = EXCLUDED.seq, sender_id = EXCLUDED.sender_id, at = EXCLUDED.at
WHERE a.seq < EXCLUDED.seq
"""

# One UPDATE per message folds every edit, deletion and thread reply of the batch: a row may change only
# once per statement. The newest edit wins unless an older one arrives later; the first deletion wins and
# empties the message; a reply counts once on its root (replies with a seq past the root's last_reply_seq).
_APPLY_CHANGES = """
UPDATE messages m
SET content     = CASE WHEN coalesce(m.deleted_seq, c.deleted_seq) IS NOT NULL THEN ''
                       WHEN c.edit_seq > coalesce(m.edit_seq, 0) THEN c.content ELSE m.content END,
    meta        = CASE WHEN coalesce(m.deleted_seq, c.deleted_seq) IS NOT NULL THEN NULL ELSE m.meta END,
    edited_at   = CASE WHEN c.edit_seq > coalesce(m.edit_seq, 0) THEN c.edited_at ELSE m.edited_at END,
    edit_seq    = greatest(m.edit_seq, c.edit_seq),
    deleted_seq = coalesce(m.deleted_seq, c.deleted_seq),
    deleted_at  = coalesce(m.deleted_at, c.deleted_at),
    deleted_by  = coalesce(m.deleted_by, c.deleted_by),
    reply_count = m.reply_count + (SELECT count(*) FROM unnest(c.reply_seqs) AS r(seq)
                                   WHERE r.seq > coalesce(m.last_reply_seq, 0)),
    last_reply_at  = CASE WHEN c.last_reply_seq > coalesce(m.last_reply_seq, 0) THEN c.last_reply_at
                          ELSE m.last_reply_at END,
    last_reply_seq = greatest(m.last_reply_seq, c.last_reply_seq)
FROM (
    SELECT e.target AS message_id, e.stream_id AS room_id,
           array_agg(e.seq) FILTER (WHERE e.type = 'message.sent') AS reply_seqs,
           max(e.seq) FILTER (WHERE e.type = 'message.sent') AS last_reply_seq,
           (array_agg(e.created_at ORDER BY e.seq DESC) FILTER (WHERE e.type = 'message.sent'))[1] AS last_reply_at,
           max(e.seq) FILTER (WHERE e.type = 'message.edited') AS edit_seq,
           (array_agg(e.data->>'content' ORDER BY e.seq DESC) FILTER (WHERE e.type = 'message.edited'))[1] AS content,
           (array_agg(e.created_at ORDER BY e.seq DESC) FILTER (WHERE e.type = 'message.edited'))[1] AS edited_at,
           min(e.seq) FILTER (WHERE e.type = 'message.deleted') AS deleted_seq,
           (array_agg(e.created_at ORDER BY e.seq) FILTER (WHERE e.type = 'message.deleted'))[1] AS deleted_at,
           (array_agg(e.data->>'deleted_by' ORDER BY e.seq) FILTER (WHERE e.type = 'message.deleted'))[1] AS deleted_by
    FROM (SELECT n.*, CASE WHEN n.type = 'message.sent' THEN n.data->>'thread_id' ELSE n.data->>'message_id' END
                 AS target
          FROM new_events n
          WHERE n.type IN ('message.edited', 'message.deleted') OR (n.type = 'message.sent' AND n.data ? 'thread_id')
    ) e
    GROUP BY 1, 2
) c
WHERE m.message_id = c.message_id AND m.room_id = c.room_id
"""

# A deleted room's messages all read as deleted (the room's deletion shares its batch with no other append to
# the room, see projections/guards.py EndsRoom); ones deleted before keep their own deletion.
_APPLY_ROOM_DELETED = """
UPDATE messages m SET content = '', meta = NULL, deleted_seq = e.seq, deleted_at = e.created_at,
       deleted_by = e.data->>'deleted_by'
FROM new_events e
WHERE e.type = 'room.deleted' AND m.room_id = e.stream_id AND m.deleted_seq IS NULL
"""

# Reactions are a set per (message, emoji, user): the newest event of the batch for each decides, and an
# older event never overrides a newer one (updated_seq).
_APPLY_REACTIONS = """
INSERT INTO reactions AS r (message_id, emoji, user_id, room_id, active, updated_seq, reacted_at)
SELECT DISTINCT ON (e.data->>'message_id', e.data->>'emoji', e.data->>'user_id')
       e.data->>'message_id', e.data->>'emoji', e.data->>'user_id', e.stream_id, e.type = 'reaction.added',
       e.seq, e.created_at
FROM new_events e WHERE e.type IN ('reaction.added', 'reaction.removed')
ORDER BY e.data->>'message_id', e.data->>'emoji', e.data->>'user_id', e.seq DESC
ON CONFLICT (message_id, emoji, user_id) DO UPDATE
SET active = EXCLUDED.active, updated_seq = EXCLUDED.updated_seq, reacted_at = EXCLUDED.reacted_at
WHERE r.updated_seq < EXCLUDED.updated_seq
"""


# Where each user reads each room from (the newest of their read positions and history clears), with the room's
# message count and their own there: unread counts are then differences of counters, never lookups in
# `messages` per room at read time. A read's seq never passes the room's last_seq committed before it was decided
# (service/domain/acks.py), so the messages it covers are committed, and ordinals never change: the same counts in
# the append (which sees the tables as before it) and in replay (which has applied the batch's messages first).
_MARK_READ = """
INSERT INTO read_marks AS r (tenant_id, user_id, room_id, seq, ordinal, own_ordinal)
SELECT q.tenant_id, q.user_id, q.room_id, q.seq,
       coalesce((SELECT p.ordinal FROM messages p WHERE p.room_id = q.room_id AND p.seq <= q.seq
                 ORDER BY p.seq DESC LIMIT 1), 0),
       coalesce((SELECT p.sender_ordinal FROM messages p WHERE p.room_id = q.room_id AND p.sender_id = q.user_id
                 AND p.seq <= q.seq ORDER BY p.seq DESC LIMIT 1), 0)
FROM (SELECT DISTINCT ON (1, 2, 3) e.tenant_id, substr(e.stream_id, length(e.tenant_id) + 7) AS user_id,
             e.data->>'room_id' AS room_id, (e.data->>'seq')::bigint AS seq
      FROM new_events e WHERE e.type IN ('read.recorded', 'room.cleared')
      ORDER BY 1, 2, 3, 4 DESC) q
ON CONFLICT (tenant_id, user_id, room_id) DO UPDATE
SET seq = EXCLUDED.seq, ordinal = EXCLUDED.ordinal, own_ordinal = EXCLUDED.own_ordinal
WHERE r.seq < EXCLUDED.seq
"""


class MessagesProjection:
    name = "messages"
    version = 6
    tables = ("messages", "reactions", "room_activity", "message_counts", "read_marks")
    handles = frozenset({"message.sent", "message.edited", "message.deleted", "reaction.added", "reaction.removed",
                         "room.deleted", "read.recorded", "room.cleared"})
    ddl = """
    CREATE TABLE messages (
        message_id    text PRIMARY KEY,
        room_id       text NOT NULL,
        tenant_id     text NOT NULL,
        seq           bigint NOT NULL,
        sender_id     text NOT NULL,
        content       text NOT NULL,
        meta          jsonb,
        client_msg_id text,
        created_at    timestamptz NOT NULL,
        edit_seq      bigint,
        edited_at     timestamptz,
        deleted_seq   bigint,
        deleted_at    timestamptz,
        deleted_by    text,
        thread_id     text,
        reply_count   integer NOT NULL DEFAULT 0,
        last_reply_seq bigint,
        last_reply_at timestamptz,
        message_type  text NOT NULL DEFAULT 'text',
        attachments   jsonb,  -- [Attachment] or NULL; never read after deletion
        mentions      text[],
        -- The message's place among the room's messages, and among its sender's there: unread counts are
        -- differences of these, found by index lookups, never by counting rows.
        ordinal       bigint NOT NULL,
        sender_ordinal bigint NOT NULL,
        forwarded_room_id text,
        forwarded_message_id text,
        UNIQUE (room_id, seq)
    );
    CREATE INDEX messages_thread ON messages (thread_id, seq) WHERE thread_id IS NOT NULL;
    CREATE INDEX messages_by_sender ON messages (room_id, sender_id, seq);
    CREATE INDEX messages_deleted ON messages (room_id, seq) WHERE deleted_seq IS NOT NULL;
    -- Live messages that mention anyone, with what counting a user's mentions filters on: an index-only scan.
    CREATE INDEX messages_mentioning ON messages (room_id, seq) INCLUDE (sender_id, mentions)
        WHERE mentions IS NOT NULL AND deleted_seq IS NULL;
    CREATE TABLE room_activity (
        room_id    text PRIMARY KEY,
        tenant_id  text NOT NULL,
        message_id text NOT NULL,
        seq        bigint NOT NULL,
        sender_id  text NOT NULL,
        at         timestamptz NOT NULL
    );
    CREATE TABLE message_counts (
        room_id   text NOT NULL,
        sender_id text NOT NULL,  -- '' for the whole room
        messages  bigint NOT NULL,
        last_seq  bigint NOT NULL,
        PRIMARY KEY (room_id, sender_id)
    );
    CREATE TABLE read_marks (
        tenant_id   text NOT NULL,
        user_id     text NOT NULL,
        room_id     text NOT NULL,
        seq         bigint NOT NULL,  -- read or cleared up to here
        ordinal     bigint NOT NULL,  -- the room's messages up to seq
        own_ordinal bigint NOT NULL,  -- the user's own messages among them
        PRIMARY KEY (tenant_id, user_id, room_id)
    );
    CREATE TABLE reactions (
        message_id  text NOT NULL,
        emoji       text NOT NULL,
        user_id     text NOT NULL,
        room_id     text NOT NULL,
        active      boolean NOT NULL,
        updated_seq bigint NOT NULL,
        reacted_at  timestamptz NOT NULL,
        PRIMARY KEY (message_id, emoji, user_id)
    );
    """

    sql = (_INSERT_SENT, _UPSERT_ACTIVITY, _APPLY_CHANGES, _APPLY_REACTIONS, _APPLY_ROOM_DELETED, _MARK_READ)
    statements = sql

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        await apply_statements(conn, self.statements, self.handles, events)


_COLUMNS = ("message_id, sender_id, seq, content, meta::text AS meta, client_msg_id, created_at, edited_at, "
            "deleted_at, thread_id, reply_count, last_reply_at, message_type, "
            "CASE WHEN deleted_seq IS NULL THEN attachments::text END AS attachments, "
            "coalesce(mentions, '{}') AS mentions, forwarded_room_id, forwarded_message_id")
MESSAGE_COLUMNS = _COLUMNS  # what message_view reads


def _expired(now: str) -> str:
    """Whether a messages row is past its room's retention at the timestamptz parameter `now` (false when NULL)."""
    return (f"coalesce(created_at < {now}::timestamptz - make_interval(days => (SELECT rt.retention_days FROM rooms rt"
            " WHERE rt.room_id = messages.room_id)), false)")


def retention_expired(now: str) -> str:
    """SQL: whether the row of `messages` is past its room's retention at the timestamptz parameter `now`."""
    return _expired(now)


def _columns_at(now: str) -> str:
    """_COLUMNS with the content, meta and attachments of messages past their room's retention at `now` emptied,
    before the retention job has redacted them."""
    expired = _expired(now)
    return (_COLUMNS
            .replace("content, meta::text AS meta,",
                     f"CASE WHEN {expired} THEN '' ELSE content END AS content, "
                     f"CASE WHEN {expired} THEN NULL ELSE meta::text END AS meta,")
            .replace("CASE WHEN deleted_seq IS NULL THEN attachments::text END",
                     f"CASE WHEN deleted_seq IS NULL AND NOT {expired} THEN attachments::text END"))


# Rooms with a retention, then each one's oldest live messages past it, walking (room_id, seq) from the start.
_EXPIRED = """
SELECT r.tenant_id, r.room_id, x.message_id
FROM rooms r
CROSS JOIN LATERAL (
    SELECT m.message_id, m.seq FROM messages m
    WHERE m.room_id = r.room_id AND m.deleted_seq IS NULL
      AND m.created_at < $1::timestamptz - make_interval(days => r.retention_days)
    ORDER BY m.seq LIMIT $2
) x
WHERE r.retention_days IS NOT NULL AND r.deleted_seq IS NULL
ORDER BY r.room_id, x.seq
LIMIT $2
"""


async def expired_messages(conn: Queryable, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` live messages older than their room's message_retention_days at `now`: tenant_id, room_id,
    message_id."""
    return await conn.fetch(_EXPIRED, now, limit)


async def page_of_messages(
    conn: Queryable,
    room_id: str,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    thread_id: str | None = None,
    floor_seq: int = 0,
    now: datetime | None = None,
) -> list[asyncpg.Record]:
    """Messages of a room in seq order (only the replies of `thread_id`, when given), none at or below `floor_seq`.

    The first `limit` after `after_seq` (below `before_seq` if given); without `after_seq`, the last
    `limit` before `before_seq` (or the newest). Given `now`, messages past the room's retention read redacted.
    """
    upper = before_seq if before_seq is not None else 2**62
    where, args = "room_id = $1 AND seq > $2", [room_id, floor_seq]
    if thread_id is not None:
        where, args = "room_id = $1 AND seq > $2 AND thread_id = $3", [room_id, floor_seq, thread_id]
    n = len(args)
    columns = _columns_at(f"${n + 1}")
    if after_seq is not None:
        return await conn.fetch(
            f"SELECT {columns} FROM messages WHERE {where} AND seq > ${n + 2} AND seq < ${n + 3} "
            f"ORDER BY seq LIMIT ${n + 4}",
            *args, now, after_seq, upper, limit,
        )
    rows = await conn.fetch(
        f"SELECT {columns} FROM messages WHERE {where} AND seq < ${n + 2} ORDER BY seq DESC LIMIT ${n + 3}",
        *args, now, upper, limit,
    )
    return rows[::-1]


async def fetch_message(
    conn: Queryable, room_id: str, message_id: str, *, now: datetime | None = None
) -> asyncpg.Record | None:
    """One message of a room, as `page_of_messages` returns it."""
    return await conn.fetchrow(
        f"SELECT {_columns_at('$3')} FROM messages WHERE room_id = $1 AND message_id = $2", room_id, message_id, now
    )


async def message_state(
    conn: Queryable, tenant_id: str, room_id: str, message_id: str, user_id: str, emoji: str | None = None
) -> asyncpg.Record | None:
    """What a change to a message is decided on, in one snapshot; None when the room is not the tenant's.

    Columns: role (the user's active room role or NULL), found, sender_id, deleted_seq, deleted_at,
    reacted (whether the user has an active `emoji` reaction on it).
    """
    return await conn.fetchrow(
        """
        SELECT (SELECT mb.role FROM members mb WHERE mb.room_id = r.room_id AND mb.user_id = $4 AND mb.active) AS role,
               m.message_id IS NOT NULL AS found, m.sender_id, m.deleted_seq, m.deleted_at,
               EXISTS (SELECT 1 FROM reactions x WHERE x.message_id = $3 AND x.emoji = $5 AND x.user_id = $4
                       AND x.active) AS reacted
        FROM rooms r LEFT JOIN messages m ON m.message_id = $3 AND m.room_id = r.room_id
        WHERE r.room_id = $1 AND r.tenant_id = $2
        """,
        room_id, tenant_id, message_id, user_id, emoji,
    )


async def reaction_counts(conn: Queryable, message_ids: list[str], user_id: str) -> dict[str, list[asyncpg.Record]]:
    """Per message: (emoji, count, me) of its active reactions, the most used first."""
    rows = await conn.fetch(
        """
        SELECT message_id, emoji, count(*) AS count, bool_or(user_id = $2) AS me
        FROM reactions WHERE message_id = ANY($1::text[]) AND active
        GROUP BY message_id, emoji ORDER BY message_id, count(*) DESC, min(reacted_at)
        """,
        message_ids, user_id,
    )
    counts: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        counts.setdefault(row["message_id"], []).append(row)
    return counts


async def reactors(conn: Queryable, message_id: str) -> list[asyncpg.Record]:
    """(emoji, user_ids in the order they reacted) of a message's active reactions, the most used first."""
    return await conn.fetch(
        """
        SELECT emoji, array_agg(user_id ORDER BY reacted_at, user_id) AS user_ids
        FROM reactions WHERE message_id = $1 AND active
        GROUP BY emoji ORDER BY count(*) DESC, min(reacted_at)
        """,
        message_id,
    )


async def redact_deleted(
    conn: Queryable, events: Iterable[RecordedEvent], *, now: datetime | None = None
) -> list[RecordedEvent]:
    """The events as clients may read them now: the content of deleted messages (sent and edits) emptied, and,
    given `now`, of messages past their room's retention.

    The log keeps what was written; reads of it (the raw room log, WebSocket catch-up) show a deleted
    message as its read model does.
    """
    events = list(events)
    ids = list({e.event.message_id for e in events if isinstance(e.event, MessageSent | MessageEdited)})
    if not ids:
        return events
    deleted = {r["message_id"] for r in await conn.fetch(
        f"SELECT message_id FROM messages WHERE message_id = ANY($1::text[])"
        f" AND (deleted_seq IS NOT NULL OR {_expired('$2')})", ids, now,
    )}
    if not deleted:
        return events
    return [_redacted(e) if isinstance(e.event, MessageSent | MessageEdited) and e.event.message_id in deleted
            else e for e in events]


async def readable_events(
    conn: Queryable, room_id: str, *, after_seq: int, limit: int, now: datetime | None = None
) -> tuple[list[RecordedEvent], bool]:
    """The room's log after `after_seq` as clients may read it (`redact_deleted`, retention at `now`), at most
    `limit` events, and whether more follow."""
    events = await read_stream(conn, room_id, after_seq=after_seq, limit=limit + 1)
    return await redact_deleted(conn, events[:limit], now=now), len(events) > limit


def _redacted(event: RecordedEvent) -> RecordedEvent:
    if isinstance(event.event, MessageSent):
        return msgspec.structs.replace(event, event=msgspec.structs.replace(event.event, content="", meta=None,
                                                                            attachments=[]))
    assert isinstance(event.event, MessageEdited)
    return msgspec.structs.replace(event, event=msgspec.structs.replace(event.event, content=""))
