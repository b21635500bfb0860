"""What /health reports about the instance's dependencies, each check bounded in time."""

from __future__ import annotations

import asyncio

import asyncpg

from eventstore.append import CONNECTION_LOST
from projections.catchup import events_behind


async def database_writable(pool: asyncpg.Pool) -> bool:
    """Whether the database answers within 2 s and takes writes."""
    try:
        # A standby (recovery) or a database set read-only refuses the appends; both show here.
        async with asyncio.timeout(2):
            return bool(await pool.fetchval(
                "SELECT current_setting('transaction_read_only') = 'off' AND NOT pg_is_in_recovery()"
            ))
    except (asyncpg.PostgresError, *CONNECTION_LOST):
        return False


async def catch_up_behind(pool: asyncpg.Pool) -> dict[str, int]:
    """Events each catch-up projection has yet to apply; empty when the database does not answer in time."""
    try:
        async with asyncio.timeout(2):
            return await events_behind(pool)
    except (asyncpg.PostgresError, *CONNECTION_LOST):
        return {}
