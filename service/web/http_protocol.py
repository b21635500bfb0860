"""uvicorn's httptools HTTP/1.1 protocol with limits on a request's head: its size (431) and the time it may take (408).

These refusals, and the 400 to a request that cannot be parsed, are answered in the documented error format.

uvicorn bounds neither with httptools: a client could send megabytes of headers, or a few bytes a
minute, and hold a connection and its buffer for as long as it likes. (The body's time limit is the
edge middleware's, service.web.middleware.RequestEdge, which sees when the app waits for the body.)
uvicorn creates one protocol per connection from a class, so the limits are class state, set once per
process by `use_limits` (the app factory calls it in every worker).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from schemas.errors import ErrorBody, ErrorDetail


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int = 32 * 1024
    read_seconds: float = 30.0


def use_limits(*, max_bytes: int, read_seconds: float) -> None:
    """Set the head limits of every connection this process accepts from now on."""
    LimitedHttpToolsProtocol.limits = HeadLimits(max_bytes, read_seconds)


class _Refused(Exception):
    pass


def _refusal(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete response refusing a request before the app saw it, in the documented error format."""
    body = msgspec.json.encode(ErrorBody(error=ErrorDetail(code=code, message=message)))
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


_TOO_LARGE = (431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE", "request headers are too large")


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol answering 431 to a head over `limits.max_bytes`, 408 to one slower than `read_seconds`."""

    limits = HeadLimits()

    _head_bytes = 0
    _in_head = False
    _refused = False
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a byte is dropped too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # HttpToolsProtocol.data_received (uvicorn 0.54), but a head we refused is not also a 400.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self._refused:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            # Counted after parsing, so a chunk that completes a head and carries a body is not counted;
            # one that carries the end of a pipelined request and the start of the next may overcount a little.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_bytes:
                self._refuse(*_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        # A head that arrived in one chunk was never counted: measure what was parsed.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_bytes:
            self._refuse(*_TOO_LARGE)
            raise _Refused  # stops the parser: no request is started
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.read_seconds, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, "Request Timeout", "REQUEST_TIMEOUT", "request headers took too long")
        elif self.cycle is None and not self.transport.is_closing():
            self.transport.close()  # connected, never sent a request

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request httptools cannot parse (e.g. `Content-Length: abc`), but in our format.
        self._refuse(400, "Bad Request", "MALFORMED_REQUEST", msg)

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._refused, self._in_head = True, False
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, code, message))
            self.transport.close()
