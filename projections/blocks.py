"""Blocks read model: who blocked whom within a tenant (from the blocking user's own stream)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import RecordedEvent, UserBlocked, UserUnblocked

_UPSERT = """
INSERT INTO blocks AS b (tenant_id, blocker_id, blocked_id, active, since, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, blocker_id, blocked_id) DO UPDATE
SET active = EXCLUDED.active, since = EXCLUDED.since, updated_seq = EXCLUDED.updated_seq
WHERE b.updated_seq < EXCLUDED.updated_seq
"""


class BlocksProjection:
    name = "blocks"
    version = 1
    tables = ("blocks",)
    handles = frozenset({"user.blocked", "user.unblocked"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE blocks (
        tenant_id   text NOT NULL,
        blocker_id  text NOT NULL,
        blocked_id  text NOT NULL,
        active      boolean NOT NULL,
        since       timestamptz NOT NULL,
        updated_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, blocker_id, blocked_id)
    );
    CREATE INDEX blocks_blocked ON blocks (tenant_id, blocked_id) WHERE active;
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for rec in events:
            ev = rec.event
            if isinstance(ev, UserBlocked | UserUnblocked):
                rows.append((rec.tenant_id, user_of_stream(rec.stream_id), ev.user_id, isinstance(ev, UserBlocked),
                             rec.created_at, rec.seq))
        if rows:
            await conn.executemany(_UPSERT, rows)


async def blockers_among(conn: Queryable, tenant_id: str, user_id: str, candidates: list[str]) -> frozenset[str]:
    """Those of `candidates` who have blocked `user_id`."""
    if not candidates:
        return frozenset()
    rows = await conn.fetch(
        "SELECT blocker_id FROM blocks WHERE tenant_id = $1 AND blocked_id = $2 AND active"
        " AND blocker_id = ANY($3::text[])",
        tenant_id, user_id, candidates,
    )
    return frozenset(r["blocker_id"] for r in rows)


async def blocked_by_user(conn: Queryable, tenant_id: str, user_id: str) -> list[asyncpg.Record]:
    """The users `user_id` has blocked, most recent first."""
    return await conn.fetch(
        "SELECT blocked_id, since FROM blocks WHERE tenant_id = $1 AND blocker_id = $2 AND active"
        " ORDER BY since DESC, blocked_id",
        tenant_id, user_id,
    )
