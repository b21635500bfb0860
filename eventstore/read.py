"""Reading the log: one stream after a seq, and the global log in position order without skipping late commits."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from eventstore.append import record_from_row
from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent

_COLUMNS = "position, stream_id, seq, tenant_id, created_at, data::text AS data, metadata::text AS metadata"

_READ_STREAM = f"""
SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""
_READ_GLOBAL = f"""
SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""
_SNAPSHOT = """
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax
"""


async def read_stream(
    conn: Queryable, stream_id: str, *, after_seq: int = 0, limit: int = 100
) -> list[RecordedEvent]:
    """Events of one stream with seq > after_seq, in seq order, at most `limit`."""
    return [record_from_row(r) for r in await conn.fetch(_READ_STREAM, stream_id, after_seq, limit)]


@dataclass
class _Hole:
    position: int
    # Every transaction that could own this position had begun before this xid was handed out.
    xmax_when_seen: int


class GlobalReader:
    """Follows the global log in position order and never skips an event whose transaction commits late.

    Positions are handed out before commit, so a reader can see position 51 while 50 is still in
    flight. At such a hole the reader stops; once every transaction that was running when it saw the
    hole has ended (the snapshot's xmin has passed the xmax noted then), a hole still empty is a
    rolled-back append and is skipped for good.
    """

    def __init__(self, after_position: int = 0) -> None:
        self.position = after_position
        self._hole: _Hole | None = None

    @property
    def waiting_at_hole(self) -> bool:
        """The last read stopped at a position that may still be filled by a late commit."""
        return self._hole is not None

    async def read(self, conn: Connection, *, limit: int = 1000, final: bool = False) -> list[RecordedEvent]:
        """The next events after `self.position` that are safe to hand on; advances the position.

        `final=True` is for a caller that holds the appenders out (replay's swap): holes are final then.
        """
        if final:  # the caller's transaction holds the appenders out; nothing can commit late
            snap = None
            rows = await conn.fetch(_READ_GLOBAL, self.position, limit)
        else:
            # One snapshot for both statements, so the xids describe exactly the rows we saw.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snap = await conn.fetchrow(_SNAPSHOT)
                rows = await conn.fetch(_READ_GLOBAL, self.position, limit)
        out: list[RecordedEvent] = []
        for row in rows:
            expected = self.position + 1
            if row["position"] != expected and snap is not None and not self._hole_is_final(expected, snap):
                break
            self._hole = None
            out.append(record_from_row(row))
            self.position = row["position"]
        return out

    def _hole_is_final(self, position: int, snap: asyncpg.Record) -> bool:
        if self._hole is None or self._hole.position != position:
            self._hole = _Hole(position, snap["xmax"])
            return False
        return bool(snap["xmin"] >= self._hole.xmax_when_seen)
