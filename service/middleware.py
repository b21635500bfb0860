"""Pure ASGI middleware: the request size limit, rate-limit headers and one access-log line per request."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import PayloadTooLarge
from service.errors import error_response
from service.ratelimit import STATE_KEY, header_pairs

access = structlog.get_logger("roomlog.access")


class BodyLimit:
    """Rejects request bodies over `max_bytes` with 413, by Content-Length up front or while reading."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body is larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await error_response(413, PayloadTooLarge.code, self.message)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(self.message)
            return message

        await self.app(scope, limited, send)


class RateLimitHeaders:
    """Adds X-RateLimit-Limit, -Remaining and -Reset to the response of every request counted against a limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The route noted its decision in the request's state (service.ratelimit) before answering.
                decision = scope.get("state", {}).get(STATE_KEY)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *header_pairs(decision)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessLog:
    """Logs method, route, status, duration, tenant and user of every HTTP request; never bodies or keys."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            principal = scope.get("state", {}).get("principal")
            route = scope.get("route")
            access.info(
                "request",
                method=scope["method"],
                route=getattr(route, "path", scope["path"]),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant=getattr(principal, "tenant_id", None),
                user=getattr(principal, "user_id", None),
            )
