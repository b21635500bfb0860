"""Topic subscriptions read model: which users of a tenant follow which notification topics."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from projections.streams import user_of_stream
from schemas.events import RecordedEvent, SubscriptionAdded, SubscriptionRemoved

_UPSERT = """
INSERT INTO subscriptions AS s (tenant_id, user_id, topic, active, since, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, user_id, topic) DO UPDATE
SET active = EXCLUDED.active, since = EXCLUDED.since, updated_seq = EXCLUDED.updated_seq
WHERE s.updated_seq < EXCLUDED.updated_seq
"""


class SubscriptionsProjection:
    name = "subscriptions"
    version = 1
    tables = ("subscriptions",)
    handles = frozenset({"subscription.added", "subscription.removed"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE subscriptions (
        tenant_id   text NOT NULL,
        user_id     text NOT NULL,
        topic       text NOT NULL,
        active      boolean NOT NULL,
        since       timestamptz NOT NULL,
        updated_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, user_id, topic)
    );
    CREATE INDEX subscriptions_topic ON subscriptions (tenant_id, topic) WHERE active;
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        rows = [
            (rec.tenant_id, user_of_stream(rec.stream_id), rec.event.topic,
             isinstance(rec.event, SubscriptionAdded), rec.created_at, rec.seq)
            for rec in events
            if isinstance(rec.event, SubscriptionAdded | SubscriptionRemoved)
        ]
        if rows:
            await conn.executemany(_UPSERT, rows)


async def topics_of(conn: Queryable, tenant_id: str, user_id: str) -> list[asyncpg.Record]:
    """The user's active subscriptions, oldest first."""
    return await conn.fetch(
        "SELECT topic, since FROM subscriptions WHERE tenant_id = $1 AND user_id = $2 AND active"
        " ORDER BY since, topic",
        tenant_id, user_id,
    )


async def is_subscribed(conn: Queryable, tenant_id: str, user_id: str, topic: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT active FROM subscriptions WHERE tenant_id = $1 AND user_id = $2 AND topic = $3",
        tenant_id, user_id, topic,
    ))


async def notification_targets(
    conn: Queryable, tenant_id: str, *, user_ids: list[str], room_id: str | None, topic: str | None
) -> list[str]:
    """Every user a notification reaches: named users, a room's active members, a topic's subscribers."""
    rows = await conn.fetch(
        "SELECT unnest($2::text[]) AS user_id"
        " UNION SELECT m.user_id FROM members m JOIN rooms r ON r.room_id = m.room_id"
        "   WHERE m.room_id = $3 AND r.tenant_id = $1 AND m.active"
        " UNION SELECT user_id FROM subscriptions WHERE tenant_id = $1 AND topic = $4 AND active",
        tenant_id, user_ids, room_id, topic,
    )
    return sorted(r["user_id"] for r in rows)
