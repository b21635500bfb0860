"""Messages read model: one row per sent message, keyed by id and by (room, seq)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent

# Runs inside the append statement over the rows it just wrote, and in replay over rows read back.
_PROJECT = """
INSERT INTO messages (message_id, room_id, tenant_id, seq, sender_id, content, meta, client_msg_id, created_at)
SELECT e.data->>'message_id', e.stream_id, e.tenant_id, e.seq, e.data->>'sender_id', e.data->>'content',
       NULLIF(e.data->'meta', 'null'::jsonb), e.data->>'client_msg_id', e.created_at
FROM new_events e WHERE e.type = 'message.sent'
ON CONFLICT DO NOTHING
"""


class MessagesProjection:
    name = "messages"
    version = 1
    tables = ("messages",)
    handles = frozenset({"message.sent"})
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
        UNIQUE (room_id, seq)
    );
    """

    sql = _PROJECT

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        positions = [e.position for e in events if e.type in self.handles]
        if positions:
            await conn.execute(
                f"WITH new_events AS (SELECT * FROM events WHERE position = ANY($1::bigint[])) {_PROJECT}", positions
            )


_COLUMNS = "message_id, sender_id, seq, content, meta::text AS meta, client_msg_id, created_at"


async def page_of_messages(
    conn: Queryable,
    room_id: str,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Messages of a room in seq order.

    The first `limit` after `after_seq` (below `before_seq` if given); without `after_seq`, the last
    `limit` before `before_seq` (or the newest).
    """
    upper = before_seq if before_seq is not None else 2**62
    if after_seq is not None:
        return await conn.fetch(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4",
            room_id, after_seq, upper, limit,
        )
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM messages WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        room_id, upper, limit,
    )
    return rows[::-1]
