"""Receipts read model: how far each user has received (acked) and read each room; neither moves backwards.

Reading implies receiving: a read position raises the delivered one with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import AckRecorded, ReadRecorded, RecordedEvent

_UPSERT = """
INSERT INTO receipts AS r (tenant_id, user_id, room_id, seq, acked_at, read_seq, read_at)
SELECT t, u, rm, greatest(a, rd), coalesce(a_at, rd_at), rd, rd_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::bigint[], $7::timestamptz[])
     AS q(t, u, rm, a, a_at, rd, rd_at)
ON CONFLICT (tenant_id, user_id, room_id) DO UPDATE
SET seq      = greatest(r.seq, EXCLUDED.seq),
    acked_at = CASE WHEN EXCLUDED.seq > r.seq THEN EXCLUDED.acked_at ELSE r.acked_at END,
    read_seq = greatest(r.read_seq, EXCLUDED.read_seq),
    read_at  = CASE WHEN EXCLUDED.read_seq > r.read_seq THEN EXCLUDED.read_at ELSE r.read_at END
WHERE r.seq < EXCLUDED.seq OR r.read_seq < EXCLUDED.read_seq
"""

@dataclass
class _Positions:
    # How far received: raised by acks and reads alike, stamped by the first event that reached it (as one
    # event at a time would leave it: a later one of the same seq does not move it).
    acked: int = 0
    acked_at: datetime | None = None
    read: int = 0
    read_at: datetime | None = None


class ReceiptsProjection:
    name = "receipts"
    version = 2
    tables = ("receipts",)
    handles = frozenset({"ack.recorded", "read.recorded"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE receipts (
        tenant_id text NOT NULL,
        user_id   text NOT NULL,
        room_id   text NOT NULL,
        seq       bigint NOT NULL,
        acked_at  timestamptz NOT NULL,
        read_seq  bigint NOT NULL DEFAULT 0,
        read_at   timestamptz,
        PRIMARY KEY (tenant_id, user_id, room_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        # One row per (user, room) in this batch, with its highest ack and read: a row may change once per statement.
        best: dict[tuple[str, str, str], _Positions] = {}
        for rec in events:
            ev = rec.event
            if not isinstance(ev, AckRecorded | ReadRecorded):
                continue
            kept = best.setdefault((rec.tenant_id, user_of_stream(rec.stream_id), ev.room_id), _Positions())
            if ev.seq > kept.acked:
                kept.acked, kept.acked_at = ev.seq, rec.created_at
            if isinstance(ev, ReadRecorded) and ev.seq > kept.read:
                kept.read, kept.read_at = ev.seq, rec.created_at
        if not best:
            return
        keys, values = list(best), list(best.values())
        await conn.execute(
            _UPSERT,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [v.acked for v in values], [v.acked_at for v in values],
            [v.read for v in values], [v.read_at for v in values],
        )


async def ack_state(
    conn: Queryable, tenant_id: str, user_id: str, user_stream_id: str, room_id: str
) -> asyncpg.Record | None:
    """For an ack or a read: the room's last_seq, the user's role, their acked and read seqs and their stream's
    last_seq."""
    return await conn.fetchrow(
        "SELECT s.last_seq AS room_last_seq, m.role,"
        " coalesce(rc.seq, 0) AS acked_seq, coalesce(rc.read_seq, 0) AS read_seq,"
        " coalesce((SELECT last_seq FROM streams WHERE stream_id = $3), 0) AS user_last_seq"
        " FROM rooms r JOIN streams s ON s.stream_id = r.room_id"
        " LEFT JOIN members m ON m.room_id = r.room_id AND m.user_id = $2 AND m.active"
        " LEFT JOIN receipts rc ON rc.tenant_id = $1 AND rc.user_id = $2 AND rc.room_id = r.room_id"
        " WHERE r.room_id = $4 AND r.tenant_id = $1",
        tenant_id, user_id, user_stream_id, room_id,
    )


async def room_receipts(conn: Queryable, tenant_id: str, room_id: str) -> list[asyncpg.Record]:
    """Every active member of a room with how far they received and read it (0 when not yet)."""
    return await conn.fetch(
        """
        SELECT m.user_id, coalesce(rc.seq, 0) AS delivered_seq, coalesce(rc.read_seq, 0) AS read_seq, rc.read_at
        FROM members m
        LEFT JOIN LATERAL (SELECT r.seq, r.read_seq, r.read_at FROM receipts r
                           WHERE r.tenant_id = $1 AND r.user_id = m.user_id AND r.room_id = m.room_id) rc ON true
        WHERE m.room_id = $2 AND m.active
        ORDER BY m.user_id
        """,
        tenant_id, room_id,
    )
