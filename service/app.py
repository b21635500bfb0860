"""The Starlette application: routes, error handlers, middleware, and the runtime's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute

from schemas.config import Settings
from service.commands.support.router import route_all
from service.config import load_settings
from service.observability.gc_pauses import freeze_startup_heap
from service.observability.logs import configure_logging
from service.realtime.gateway import websocket_endpoint
from service.routes import (
    acks,
    api_keys,
    auth,
    bots,
    conversations,
    dead_letters,
    erasure,
    health,
    media,
    media_limits,
    message_changes,
    messages,
    metrics,
    notifications,
    presence,
    rooms,
    search,
    support_agents,
    support_analytics,
    support_kb,
    support_quick_actions,
    support_sessions,
    support_sla,
    support_tickets,
    sync,
    tenants_admin,
    tokens,
    typing,
    users,
    webhooks,
)
from service.routes.asyncapi import asyncapi_endpoint
from service.routes.console import console_endpoints
from service.routes.openapi import openapi_endpoint
from service.runtime import Runtime, start_runtime, stop_runtime
from service.web.endpoints import Endpoint, routes
from service.web.errors import EXCEPTION_HANDLERS
from service.web.http_protocol import use_limits
from service.web.middleware import RequestEdge
from service.web.router import IndexedRouter

API_VERSION = "1.0.0"
_API = [
    *health.ENDPOINTS,
    *metrics.ENDPOINTS,
    *auth.ENDPOINTS,
    *rooms.ENDPOINTS,
    *messages.ENDPOINTS,
    *message_changes.ENDPOINTS,
    *typing.ENDPOINTS,
    *sync.ENDPOINTS,
    *acks.ENDPOINTS,
    *conversations.ENDPOINTS,
    *search.ENDPOINTS,
    *tokens.ENDPOINTS,
    *notifications.ENDPOINTS,
    *users.ENDPOINTS,
    *presence.ENDPOINTS,
    *api_keys.ENDPOINTS,
    *tenants_admin.ENDPOINTS,
    *webhooks.ENDPOINTS,
    *dead_letters.ENDPOINTS,
    *erasure.ENDPOINTS,
    *support_sessions.ENDPOINTS,
    *support_agents.ENDPOINTS,
    *support_kb.ENDPOINTS,
    *support_quick_actions.ENDPOINTS,
    *support_tickets.ENDPOINTS,
    *support_sla.ENDPOINTS,
    *support_analytics.ENDPOINTS,
    *media.ENDPOINTS,
    *bots.ENDPOINTS,
    *media_limits.ENDPOINTS,
    asyncapi_endpoint(version=API_VERSION),
    *console_endpoints(),
]
ENDPOINTS: list[Endpoint] = [*_API, openapi_endpoint(_API, version=API_VERSION)]


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> Starlette:
    """The app for `settings`; it starts its own Runtime unless one is given (tests share one)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = runtime is None
        app.state.runtime = await start_runtime(settings) if own else runtime
        if own:
            await route_all(app.state.runtime)  # what a crash between an append and its routing left waiting
            freeze_startup_heap(full_after=settings.gc_full_after)
        try:
            yield
        finally:
            if own:
                await stop_runtime(app.state.runtime)

    app = Starlette(
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(RequestEdge, max_bytes=settings.max_body_bytes,
                               read_seconds=settings.request_read_seconds, access_log=settings.access_log)],
    )
    # The app's router is ours: it finds a request's route without trying every route's regex.
    app.router = IndexedRouter([*routes(ENDPOINTS), WebSocketRoute("/ws", websocket_endpoint)], lifespan=lifespan)
    if runtime is not None:
        app.state.runtime = runtime
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from the environment the CLI prepared."""
    settings = load_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    use_limits(max_bytes=settings.max_header_bytes, read_seconds=settings.request_read_seconds)
    return create_app(settings)
