"""Erasing content: rewrite the events, blank the read models (one transaction), then JetStream, then VACUUM."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from nats.js import JetStreamContext

from eventstore.erasure import erase_content
from projections.erasure import ERASED_TABLES, erase_messages, erase_tenant
from service.realtime.jetstream import erase_messages as erase_from_jetstream


@dataclass
class ErasureReport:
    events: int
    messages: int
    jetstream_messages: int


async def erase(
    pool: asyncpg.Pool, js: JetStreamContext, tenant_id: str, *, user_id: str | None, erased_by: str
) -> ErasureReport:
    """Erase the content `user_id` wrote in the tenant (all the tenant's content when None), everywhere it is kept.

    Log and read models change together; JetStream follows: the events the relay already published are
    overwritten there, and the ones it has yet to publish go out as rewritten. Running it again finishes a
    run that stopped after the commit.
    """
    async with pool.acquire() as conn, conn.transaction():
        erased = await erase_content(conn, tenant_id, user_id=user_id, erased_by=erased_by)
        if user_id is None:
            await erase_tenant(conn, tenant_id)
        else:
            await erase_messages(conn, tenant_id, erased.message_ids)
    positions = set(erased.positions)
    message_ids = erased.message_ids
    if not positions:
        # A rerun: what an interrupted run erased in the log may still be in JetStream.
        positions, message_ids = await _erased_before(pool, tenant_id, user_id)
    in_jetstream = await erase_from_jetstream(js, tenant_id, positions=positions, message_ids=message_ids)
    # The rewrite left the old row versions behind as dead tuples: VACUUM removes them.
    async with pool.acquire() as conn:
        await conn.execute(f"VACUUM events, {', '.join(ERASED_TABLES)}")
    return ErasureReport(len(erased.positions), len(erased.message_ids), in_jetstream)


async def _erased_before(pool: asyncpg.Pool, tenant_id: str, user_id: str | None) -> tuple[set[int], set[str]]:
    rows = await pool.fetch(
        "SELECT position, data->>'message_id' AS message_id FROM events WHERE tenant_id = $1 AND data ? 'erased'"
        " AND ($2::text IS NULL OR data->>'sender_id' = $2 OR data->>'edited_by' = $2)",
        tenant_id, user_id,
    )
    return {r["position"] for r in rows}, {r["message_id"] for r in rows if r["message_id"]}
