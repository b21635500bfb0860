"""Liveness and readiness: uptime, whether the database takes writes, whether NATS is connected, and how far
the catch-up projections are behind."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from service.observability.health import catch_up_behind, database_writable
from service.web.endpoints import Endpoint
from service.web.request import JSON, runtime_of


def format_uptime(seconds: float) -> str:
    """`2h30m45s` style."""
    s = int(seconds)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"


async def health(request: Request) -> Response:
    runtime = runtime_of(request)
    db_writable = await database_writable(runtime.pool)
    behind = await catch_up_behind(runtime.pool) if db_writable else {}
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


async def live(request: Request) -> Response:
    return JSON(api.Liveness(status="ok"))


async def ready(request: Request) -> Response:
    runtime = runtime_of(request)
    db_writable = await database_writable(runtime.pool)
    realtime = runtime.realtime
    checks = {
        "db_writable": db_writable,
        "nats_connected": runtime.nats.connected,
        "relay_running": realtime.relay_running,
        "realtime_ready": realtime.ready.is_set(),
    }
    ok = all(checks.values())
    return JSON(api.Readiness(status="ready" if ok else "not_ready", **checks), status_code=200 if ok else 503)


ENDPOINTS = [
    Endpoint("GET", "/health", health, "Uptime, database writability and NATS connectivity (503: no writes)",
             response=api.Health, auth="none"),
    Endpoint("GET", "/health/live", live, "Liveness: the process is up", response=api.Liveness, auth="none"),
    Endpoint("GET", "/health/ready", ready, "Readiness: database writable, NATS connected, relay and real-time "
             "delivery running (503 otherwise)", response=api.Readiness, auth="none"),
]
