"""Delivery receipts read model: how far each user has acked each room; never moves backwards."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import AckRecorded, RecordedEvent

_UPSERT = """
INSERT INTO receipts AS r (tenant_id, user_id, room_id, seq, acked_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
ON CONFLICT (tenant_id, user_id, room_id) DO UPDATE
SET seq = EXCLUDED.seq, acked_at = EXCLUDED.acked_at
WHERE r.seq < EXCLUDED.seq
"""


class ReceiptsProjection:
    name = "receipts"
    version = 1
    tables = ("receipts",)
    handles = frozenset({"ack.recorded"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE receipts (
        tenant_id text NOT NULL,
        user_id   text NOT NULL,
        room_id   text NOT NULL,
        seq       bigint NOT NULL,
        acked_at  timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, user_id, room_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # Keep only the highest ack per (user, room) in this batch: one row may appear once per statement.
        best: dict[tuple[str, str, str], RecordedEvent] = {}
        for rec in events:
            ev = rec.event
            if isinstance(ev, AckRecorded):
                user_id = user_of_stream(rec.stream_id)
                key = (rec.tenant_id, user_id, ev.room_id)
                kept = best.get(key)
                if kept is None or _ack_seq(kept) < ev.seq:
                    best[key] = rec
        if not best:
            return
        keys = list(best)
        await conn.execute(
            _UPSERT,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [_ack_seq(best[k]) for k in keys], [best[k].created_at for k in keys],
        )


def _ack_seq(rec: RecordedEvent) -> int:
    assert isinstance(rec.event, AckRecorded)
    return rec.event.seq


async def ack_state(
    conn: Queryable, tenant_id: str, user_id: str, user_stream_id: str, room_id: str
) -> asyncpg.Record | None:
    """For an ack: the room's last_seq, the user's role, their acked seq and their stream's last_seq."""
    return await conn.fetchrow(
        "SELECT s.last_seq AS room_last_seq, m.role,"
        " coalesce((SELECT seq FROM receipts WHERE tenant_id = $1 AND user_id = $2 AND room_id = $4), 0) AS acked_seq,"
        " coalesce((SELECT last_seq FROM streams WHERE stream_id = $3), 0) AS user_last_seq"
        " FROM rooms r JOIN streams s ON s.stream_id = r.room_id"
        " LEFT JOIN members m ON m.room_id = r.room_id AND m.user_id = $2 AND m.active"
        " WHERE r.room_id = $4 AND r.tenant_id = $1",
        tenant_id, user_id, user_stream_id, room_id,
    )
