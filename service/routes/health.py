"""Liveness and readiness: uptime, whether the database takes writes, whether NATS is connected, and how far
the catch-up projections are behind."""

from __future__ import annotations

import asyncio

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from eventstore.append import CONNECTION_LOST
from projections.catchup import events_behind
from schemas import api
from service.endpoints import Endpoint
from service.http import JSON, runtime_of


def format_uptime(seconds: float) -> str:
    """`2h30m45s` style."""
    s = int(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"


async def health(request: Request) -> Response:
    runtime = runtime_of(request)
    db_writable = await _db_writable(runtime.pool)
    behind = await _catch_up_behind(runtime.pool) if db_writable else {}
    realtime_ready = runtime.realtime.ready.is_set()
    body = api.Health(
        status="ok" if db_writable and runtime.nats.connected and realtime_ready else "degraded",
        uptime=format_uptime(runtime.monotonic() - runtime.started_at),
        db_writable=db_writable,
        nats_connected=runtime.nats.connected,
        realtime_ready=realtime_ready,
        catch_up_behind=behind,
    )
    return JSON(body, status_code=200 if db_writable else 503)


async def _db_writable(pool: asyncpg.Pool) -> bool:
    try:
        # A standby (recovery) or a database set read-only refuses the appends; both show here.
        async with asyncio.timeout(2):
            return bool(await pool.fetchval(
                "SELECT current_setting('transaction_read_only') = 'off' AND NOT pg_is_in_recovery()"
            ))
    except (asyncpg.PostgresError, *CONNECTION_LOST):
        return False


async def _catch_up_behind(pool: asyncpg.Pool) -> dict[str, int]:
    try:
        async with asyncio.timeout(2):
            return await events_behind(pool)
    except (asyncpg.PostgresError, *CONNECTION_LOST):
        return {}


ENDPOINTS = [
    Endpoint("GET", "/health", health, "Uptime, database writability and NATS connectivity (503: no writes)",
             response=api.Health, auth="none"),
]
