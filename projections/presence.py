"""Presence statuses read model: the status, text and emoji each user last chose (from the user's own stream)."""

from __future__ import annotations

from collections.abc import Sequence

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import PresenceStatusSet, RecordedEvent

_UPSERT = """
INSERT INTO presence_statuses AS p
    (tenant_id, user_id, status, status_text, status_emoji, expires_at, set_at, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant_id, user_id) DO UPDATE
SET status = EXCLUDED.status, status_text = EXCLUDED.status_text, status_emoji = EXCLUDED.status_emoji,
    expires_at = EXCLUDED.expires_at, set_at = EXCLUDED.set_at, updated_seq = EXCLUDED.updated_seq
WHERE p.updated_seq < EXCLUDED.updated_seq
"""


class PresenceStatusesProjection:
    name = "presence_statuses"
    version = 1
    tables = ("presence_statuses",)
    handles = frozenset({"presence.status_set"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE presence_statuses (
        tenant_id    text NOT NULL,
        user_id      text NOT NULL,
        status       text NOT NULL,
        status_text  text,
        status_emoji text,
        expires_at   timestamptz,
        set_at       timestamptz NOT NULL,
        updated_seq  bigint NOT NULL,
        PRIMARY KEY (tenant_id, user_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for rec in events:
            ev = rec.event
            if isinstance(ev, PresenceStatusSet):
                rows.append((rec.tenant_id, user_of_stream(rec.stream_id), ev.status, ev.status_text,
                             ev.status_emoji, ev.expires_at, rec.created_at, rec.seq))
        if rows:
            await conn.executemany(_UPSERT, rows)


async def chosen_statuses(conn: Queryable, tenant_id: str, user_ids: Sequence[str]) -> dict[str, dict[str, object]]:
    """The last status each of `user_ids` chose (expired ones included: the caller knows the time)."""
    if not user_ids:
        return {}
    rows = await conn.fetch(
        "SELECT user_id, status, status_text, status_emoji, expires_at, set_at FROM presence_statuses"
        " WHERE tenant_id = $1 AND user_id = ANY($2::text[])",
        tenant_id, list(user_ids),
    )
    return {r["user_id"]: dict(r) for r in rows}
