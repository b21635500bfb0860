"""The request id: taken from `X-Request-Id` when it is safe, else generated; the correlation id of what the request
appends, and a key of every log line logged while it is handled."""

from __future__ import annotations

import itertools
import re
import secrets
from contextvars import ContextVar

HEADER = b"x-request-id"
# Bounded and printable, so a client's id can go into logs, event metadata and headers as it is.
_SAFE = re.compile(rb"[A-Za-z0-9._:@-]{1,128}")

# A generated id is this process's random prefix and a counter: unique across processes and restarts, and a
# fraction of a uuid4's cost (which reads the OS's random source on every call).
_PREFIX = secrets.token_hex(8)
_counter = itertools.count(1)

current_request_id: ContextVar[str | None] = ContextVar("roomlog_request_id", default=None)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-Id` when it is 1-128 characters of [A-Za-z0-9._:@-]; otherwise a new one."""
    for name, value in headers:
        if name == HEADER and _SAFE.fullmatch(value):
            return value.decode("ascii")
    return f"{_PREFIX}-{next(_counter):x}"
