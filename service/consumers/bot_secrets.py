"""Bots' webhook signing secrets, outside the log: rows of `bot_secrets` that the bots' events name by id.

A secret is stored before the event that names it is appended; after the append, the bot's other rows
stored before that event are deleted, so a delivery always finds the secret its bot's current configuration
names. (A concurrent change that read the bot after this append stores its secret later, so its row stays;
one that read before fails at its expected seq.) A row whose event was never appended (a lost race) is
deleted by the command that wrote it, any other leftover by the bot's next change.
"""

from __future__ import annotations

from datetime import datetime

from eventstore.types import Queryable
from service.identity.ids import new_id


async def store_secret(conn: Queryable, tenant_id: str, bot_id: str, secret: str) -> str:
    """Keep a new secret of the bot; its id, for the event that will name it."""
    secret_id = new_id("bsec")
    await conn.execute(
        "INSERT INTO bot_secrets (tenant_id, secret_id, bot_id, secret) VALUES ($1, $2, $3, $4)",
        tenant_id, secret_id, bot_id, secret,
    )
    return secret_id


async def secret_of(conn: Queryable, tenant_id: str, secret_id: str | None) -> str | None:
    """The secret with this id; None for no id or no such row."""
    if secret_id is None:
        return None
    value = await conn.fetchval("SELECT secret FROM bot_secrets WHERE tenant_id = $1 AND secret_id = $2",
                                tenant_id, secret_id)
    return str(value) if value is not None else None


async def forget_secrets(conn: Queryable, tenant_id: str, bot_id: str, *, keep: str | None, before: datetime) -> None:
    """Delete the bot's secrets stored before `before` (the event that named the current one), but `keep`."""
    await conn.execute(
        "DELETE FROM bot_secrets WHERE tenant_id = $1 AND bot_id = $2 AND secret_id IS DISTINCT FROM $3"
        " AND created_at < $4",
        tenant_id, bot_id, keep, before,
    )


async def forget_secret(conn: Queryable, tenant_id: str, secret_id: str) -> None:
    """Delete one secret (its event was never appended)."""
    await conn.execute("DELETE FROM bot_secrets WHERE tenant_id = $1 AND secret_id = $2", tenant_id, secret_id)
