"""Media limits read model: each tenant's own overrides of the upload limits (the last media.limits_set)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import MediaLimitsSet, RecordedEvent

_UPSERT = """
INSERT INTO media_limits AS l (tenant_id, max_bytes, allowed_types, quota_bytes, set_by, updated_at, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id) DO UPDATE
SET max_bytes = EXCLUDED.max_bytes, allowed_types = EXCLUDED.allowed_types, quota_bytes = EXCLUDED.quota_bytes,
    set_by = EXCLUDED.set_by, updated_at = EXCLUDED.updated_at, updated_seq = EXCLUDED.updated_seq
WHERE l.updated_seq < EXCLUDED.updated_seq
"""


class MediaLimitsProjection:
    name = "media_limits"
    version = 1
    tables = ("media_limits",)
    handles = frozenset({"media.limits_set"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE media_limits (
        tenant_id     text PRIMARY KEY,
        max_bytes     bigint,
        allowed_types text[],
        quota_bytes   bigint,
        set_by        text NOT NULL,
        updated_at    timestamptz NOT NULL,
        updated_seq   bigint NOT NULL
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = [
            (rec.tenant_id, rec.event.max_bytes, rec.event.allowed_types, rec.event.quota_bytes, rec.event.by,
             rec.created_at, rec.seq)
            for rec in events if isinstance(rec.event, MediaLimitsSet)
        ]
        if rows:
            await conn.executemany(_UPSERT, rows)


async def fetch_media_limits(conn: Queryable, tenant_id: str) -> asyncpg.Record | None:
    """The tenant's own limits, or None when it never set any."""
    return await conn.fetchrow(
        "SELECT max_bytes, allowed_types, quota_bytes, updated_at, updated_seq FROM media_limits WHERE tenant_id = $1",
        tenant_id,
    )
