"""Reading the log: one stream after a seq, and the global log in position order without skipping late commits."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from eventstore.append import record_from_row
from eventstore.types import Connection, Queryable
from schemas.events import RecordedEvent

_COLUMNS = "position, stream_id, seq, tenant_id, type, created_at, data::text AS data, metadata::text AS metadata"

_READ_STREAM = f"""
SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""
_READ_GLOBAL = f"""
SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""
# The same with the payloads of only some types ($3), for a reader that decodes no others (replay and the
# catch-up runners, whose SQL projections read the payloads from `events` themselves): most of the log is never
# turned into JSON text and sent.
_SOME_PAYLOADS = ("data::text AS data, metadata::text AS metadata",
                  "CASE WHEN type = ANY($3::text[]) THEN data::text END AS data,"
                  " CASE WHEN type = ANY($3::text[]) THEN metadata::text END AS metadata")
# One statement runs under one snapshot, and pg_current_snapshot() is that snapshot: its xids describe
# exactly the rows returned. (The scalar subqueries are init plans, evaluated once per statement.)
_READ_GLOBAL_WITH_SNAPSHOT = f"""
SELECT {_COLUMNS},
       (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS snapshot_xmin,
       (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint) AS snapshot_xmax
FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""
_READ_GLOBAL_SOME = _READ_GLOBAL.replace(*_SOME_PAYLOADS)
_READ_GLOBAL_WITH_SNAPSHOT_SOME = _READ_GLOBAL_WITH_SNAPSHOT.replace(*_SOME_PAYLOADS)


async def read_stream(
    conn: Queryable, stream_id: str, *, after_seq: int = 0, limit: int = 100
) -> list[RecordedEvent]:
    """Events of one stream with seq > after_seq, in seq order, at most `limit`."""
    return [record_from_row(r) for r in await conn.fetch(_READ_STREAM, stream_id, after_seq, limit)]


_READ_SEQS = f"""
SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq
"""


async def read_seqs(conn: Queryable, stream_id: str, seqs: list[int]) -> list[RecordedEvent]:
    """The events of one stream at these seqs, in seq order."""
    return [record_from_row(r) for r in await conn.fetch(_READ_SEQS, stream_id, seqs)]


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
        return [record_from_row(row) for row in await self.read_rows(conn, limit=limit, final=final)]

    async def read_rows(
        self, conn: Connection, *, limit: int = 1000, final: bool = False, payload_types: list[str] | None = None
    ) -> list[asyncpg.Record]:
        """Like `read`, but the rows undecoded: position, stream_id, seq, tenant_id, type, created_at, and
        data and metadata as JSON text — given `payload_types`, only for events of those types (NULL for others)."""
        some = payload_types is not None
        args = (self.position, limit, payload_types) if some else (self.position, limit)
        if final:  # the caller's transaction holds the appenders out; nothing can commit late
            return self._advance(await conn.fetch(_READ_GLOBAL_SOME if some else _READ_GLOBAL, *args), final=True)
        statement = _READ_GLOBAL_WITH_SNAPSHOT_SOME if some else _READ_GLOBAL_WITH_SNAPSHOT
        return self._advance(await conn.fetch(statement, *args), final=False)

    def _advance(self, rows: list[asyncpg.Record], *, final: bool) -> list[asyncpg.Record]:
        for i, row in enumerate(rows):
            expected = self.position + 1
            if row["position"] != expected and not final and not self._hole_is_final(expected, row):
                return rows[:i]
            self._hole = None
            self.position = row["position"]
        return rows

    def _hole_is_final(self, position: int, snapshot: asyncpg.Record) -> bool:
        if self._hole is None or self._hole.position != position:
            self._hole = _Hole(position, snapshot["snapshot_xmax"])
            return False
        return bool(snapshot["snapshot_xmin"] >= self._hole.xmax_when_seen)


_READ_TENANT = f"""
SELECT {_COLUMNS} FROM events WHERE tenant_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""


async def read_tenant(conn: Queryable, tenant_id: str, *, after_position: int, limit: int) -> list[RecordedEvent]:
    """One tenant's events after a global position, in log order, at most `limit`."""
    return [record_from_row(r) for r in await conn.fetch(_READ_TENANT, tenant_id, after_position, limit)]
