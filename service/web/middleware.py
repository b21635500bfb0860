"""The one pure-ASGI layer around every HTTP request: the body's size and time limits, rate-limit headers, the
request id, the access line and the request-duration metric."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.errors import PayloadTooLarge, RequestTimeout
from service.observability.metrics import UNMATCHED, Metrics
from service.observability.request_id import current_request_id, request_id_from
from service.ratelimit.limiter import STATE_KEY, header_pairs
from service.web.errors import CLIENT_DISCONNECTED, error_response

access = structlog.get_logger("roomlog.access")

BodySize = Literal["too large", "within", "unknown"]
# A method label outside these is "other": clients choose methods, and labels must stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestEdge:
    """Rejects bodies over `max_bytes` (413) or slower than `read_seconds` (408), adds the X-RateLimit-* headers
    and logs one line per request.

    The jobs share one layer and one `send` wrapper: each layer of pure-ASGI middleware costs
    a coroutine per request and per message sent, on every request.
    Access line: method, route, status, duration, tenant, user and request id; never bodies or keys. A
    client that went away before the answer is status 499. The request id (`X-Request-Id`, see
    service.observability.request_id) is echoed, bound into every log line of the request and used as the
    correlation id of the events it appends.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_seconds: float = 30.0, access_log: bool = True) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_seconds = read_seconds
        self.access_log = access_log
        self.too_large = f"request body is larger than {max_bytes} bytes"
        self.too_slow = f"the request body did not arrive within {read_seconds:g} s"
        self._metrics: Metrics | None = None
        self._metrics_known = False

    def metrics_of(self, scope: Scope) -> Metrics | None:
        """The runtime's metrics when they are on (looked up on the first request: the runtime starts later)."""
        if not self._metrics_known:
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is None:  # a request before the lifespan started the runtime
                return None
            metrics: Metrics = runtime.metrics
            self._metrics = metrics if metrics.enabled else None
            self._metrics_known = True
        return self._metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        request_id_header = (b"x-request-id", request_id.encode())
        id_token = current_request_id.set(request_id)
        log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500  # what the access line says when the app fails before answering
        seen = 0
        body_read = False
        deadline = asyncio.get_running_loop().time() + self.read_seconds
        count = False

        async def bounded_receive() -> Message:
            nonlocal seen, body_read
            if body_read:  # waiting for a disconnect, not for the body: no limit
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(self.too_slow) from None
            if message["type"] == "http.request":
                body_read = not message.get("more_body", False)
                if count:
                    seen += len(message.get("body", b""))
                    if seen > self.max_bytes:
                        raise PayloadTooLarge(self.too_large)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
                if status == RequestTimeout.status:  # the rest of the body may never come: do not wait for it
                    message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
                # The route noted its limit decision in the request state (service.ratelimit.limiter) first.
                decision = scope.get("state", {}).get(STATE_KEY)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *header_pairs(decision)]
            await send(message)

        try:
            size = body_size(scope["headers"], self.max_bytes)
            if size == "too large":
                await error_response(413, PayloadTooLarge.code, self.too_large)(scope, receive, send_with_headers)
            else:
                count = size == "unknown"
                await self.app(scope, bounded_receive, send_with_headers)
        finally:
            if self.access_log:
                self._log(scope, status, started)
            metrics = self.metrics_of(scope)
            if metrics is not None:
                route = scope.get("route")
                method = scope["method"]
                metrics.observe_request(getattr(route, "path", UNMATCHED), method if method in _METHODS else "other",
                                        status, time.perf_counter() - started)
            structlog.contextvars.reset_contextvars(**log_tokens)
            current_request_id.reset(id_token)

    def _log(self, scope: Scope, status: int, started: float) -> None:
        principal = scope.get("state", {}).get("principal")
        route = scope.get("route")
        access.info(
            "request",
            method=scope["method"],
            route=getattr(route, "path", scope["path"]),
            status=status,
            **({"error": "client disconnected"} if status == CLIENT_DISCONNECTED else {}),
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
