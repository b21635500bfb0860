"""Erasing content: rewrite the events, blank the read models (one transaction), then JetStream, then VACUUM."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from nats.js import JetStreamContext

from eventstore.erasure import erase_content, erased_so_far
from projections.erasure import erase_messages, erase_tenant, vacuum_erased
from projections.replay import discard_shadow
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
        # An interrupted replay's shadow was built from the content before: resuming it would bring that back.
        await discard_shadow(conn)
        if user_id is None:
            await erase_tenant(conn, tenant_id)
        else:
            await erase_messages(conn, tenant_id, user_id, erased.message_ids)
    # Everything erased so far, not only now: a run that stopped before JetStream, or an event the relay
    # had read before the rewrite and published after an earlier scan, is caught by the next run.
    positions, message_ids = await erased_so_far(pool, tenant_id, user_id=user_id)
    in_jetstream = await erase_from_jetstream(js, tenant_id, positions=positions, message_ids=message_ids)
    await vacuum_erased(pool)
    return ErasureReport(len(erased.positions), len(erased.message_ids), in_jetstream)
