"""Messages read model: one row per sent message, keyed by id and by (room, seq)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from eventstore.types import Connection, Queryable
from schemas.events import MessageSent, RecordedEvent

_json = msgspec.json.Encoder()

_INSERT = """
INSERT INTO messages (message_id, room_id, tenant_id, seq, sender_id, content, meta, client_msg_id, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::jsonb[],
                     $8::text[], $9::timestamptz[])
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

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        cols: tuple[list[object], ...] = ([], [], [], [], [], [], [], [], [])
        for rec in events:
            ev = rec.event
            if not isinstance(ev, MessageSent):
                continue
            meta = None if ev.meta is None else _json.encode(ev.meta).decode()
            values = (ev.message_id, rec.stream_id, rec.tenant_id, rec.seq, ev.sender_id, ev.content, meta,
                      ev.client_msg_id, rec.created_at)
            for col, value in zip(cols, values, strict=True):
                col.append(value)
        if cols[0]:
            await conn.execute(_INSERT, *cols)


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
