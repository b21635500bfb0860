"""Bots read model: each bot's current configuration (the last event of its stream), deleted ones kept.

A bot's webhook secret is not in the log, so not here either: the row names it by `secret_id`, a row of the
bot_secrets table (migration 071) that `active_bot` joins.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from eventstore.types import Connection, Queryable
from schemas.events import BotDeleted, BotRegistered, BotUpdated, RecordedEvent

_CONFIG = """
INSERT INTO bots AS b (tenant_id, bot_id, display_name, triggers, webhook_url, secret_id, nats_subject, key_id,
                       created_at, updated_at, deleted_at, updated_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, NULL, $10)
ON CONFLICT (tenant_id, bot_id) DO UPDATE
SET display_name = EXCLUDED.display_name, triggers = EXCLUDED.triggers, webhook_url = EXCLUDED.webhook_url,
    secret_id = EXCLUDED.secret_id, nats_subject = EXCLUDED.nats_subject,
    key_id = CASE WHEN $11 THEN EXCLUDED.key_id ELSE b.key_id END,
    created_at = CASE WHEN $11 THEN EXCLUDED.created_at ELSE b.created_at END,
    updated_at = EXCLUDED.updated_at, deleted_at = NULL, updated_seq = EXCLUDED.updated_seq
WHERE b.updated_seq < EXCLUDED.updated_seq
"""
_DELETE = """
UPDATE bots SET deleted_at = $3, updated_at = $3, updated_seq = $4
WHERE tenant_id = $1 AND bot_id = $2 AND updated_seq < $4
"""
_COLUMNS = ("bot_id, display_name, triggers, webhook_url, secret_id, nats_subject, key_id, created_at, updated_at,"
            " deleted_at, updated_seq")


class BotsProjection:
    name = "bots"
    version = 2
    tables = ("bots",)
    handles = frozenset({"bot.registered", "bot.updated", "bot.deleted"})
    sql = None  # applied in Python, in the append transaction
    ddl = """
    CREATE TABLE bots (
        tenant_id    text NOT NULL,
        bot_id       text NOT NULL,
        display_name text NOT NULL,
        triggers     text[] NOT NULL,
        webhook_url  text,
        secret_id    text,
        nats_subject text,
        key_id       text NOT NULL,
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz NOT NULL,
        deleted_at   timestamptz,
        updated_seq  bigint NOT NULL,
        PRIMARY KEY (tenant_id, bot_id)
    );
    """

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for rec in events:  # few and rare: one statement each keeps a bot's events in seq order
            e = rec.event
            if isinstance(e, BotRegistered | BotUpdated):
                await conn.execute(_CONFIG, rec.tenant_id, e.bot_id, e.display_name, e.triggers, e.webhook_url,
                                   e.secret_id, e.nats_subject, e.key_id if isinstance(e, BotRegistered) else "",
                                   rec.created_at, rec.seq, isinstance(e, BotRegistered))
            elif isinstance(e, BotDeleted):
                await conn.execute(_DELETE, rec.tenant_id, e.bot_id, rec.created_at, rec.seq)


async def fetch_bot(conn: Queryable, tenant_id: str, bot_id: str) -> asyncpg.Record | None:
    """One bot of the tenant, deleted or not."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM bots WHERE tenant_id = $1 AND bot_id = $2", tenant_id, bot_id)


async def list_bots(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's bots that are not deleted, by id."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM bots WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY bot_id", tenant_id
    )


async def bot_users(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """Every user id of the tenant that is a bot — registered (deleted too) or with the role `bot` — with the
    triggers of the active ones (NULL for the rest)."""
    return await conn.fetch(
        "SELECT bot_id AS user_id, CASE WHEN deleted_at IS NULL THEN triggers END AS triggers FROM bots"
        " WHERE tenant_id = $1"
        " UNION SELECT user_id, NULL FROM users WHERE tenant_id = $1 AND role = 'bot'"
        "   AND user_id NOT IN (SELECT bot_id FROM bots WHERE tenant_id = $1)",
        tenant_id,
    )


async def active_bot(conn: Queryable, tenant_id: str, bot_id: str) -> asyncpg.Record | None:
    """Where a bot's deliveries go and the secret that signs them (NULL when its row is missing), or None once the
    bot was deleted."""
    return await conn.fetchrow(
        "SELECT b.bot_id, b.webhook_url, s.secret, b.nats_subject FROM bots b"
        " LEFT JOIN bot_secrets s ON s.tenant_id = b.tenant_id AND s.secret_id = b.secret_id"
        " WHERE b.tenant_id = $1 AND b.bot_id = $2 AND b.deleted_at IS NULL",
        tenant_id, bot_id,
    )
