"""The one pure-ASGI layer around every HTTP request: the body size limit, rate-limit headers and the access line."""

from __future__ import annotations

import time
from typing import Literal

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import PayloadTooLarge
from service.errors import error_response
from service.ratelimit import STATE_KEY, header_pairs

access = structlog.get_logger("roomlog.access")

BodySize = Literal["too large", "within", "unknown"]


class RequestEdge:
    """Rejects bodies over `max_bytes` (413), adds the X-RateLimit-* headers and logs one line per request.

    The three jobs share one layer and one `send` wrapper: each layer of pure-ASGI middleware costs
    a coroutine per request and per message sent, on every request.
    Access line: method, route, status, duration, tenant and user; never bodies or keys.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, access_log: bool = True) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.access_log = access_log
        self.too_large = f"request body is larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the access line says when the app fails before answering
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(self.too_large)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The route noted its limit decision in the request's state (service.ratelimit) before answering.
                decision = scope.get("state", {}).get(STATE_KEY)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *header_pairs(decision)]
            await send(message)

        try:
            size = body_size(scope["headers"], self.max_bytes)
            if size == "too large":
                await error_response(413, PayloadTooLarge.code, self.too_large)(scope, receive, send_with_headers)
            else:
                await self.app(scope, counted_receive if size == "unknown" else receive, send_with_headers)
        finally:
            if self.access_log:
                self._log(scope, status, started)

    def _log(self, scope: Scope, status: int, started: float) -> None:
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


def body_size(headers: list[tuple[bytes, bytes]], max_bytes: int) -> BodySize:
    """Whether the declared body is over the limit, within it, or of unknown size (it must be counted as read).

    A server reads exactly Content-Length bytes as the body (HTTP/1.1 framing), so only a body without
    one (chunked) or with a malformed one needs counting.
    """
    declared = counted = False
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            if int(value) > max_bytes:
                return "too large"
            declared = True
        elif name in (b"content-length", b"transfer-encoding"):
            counted = True
    return "within" if declared and not counted else "unknown"
