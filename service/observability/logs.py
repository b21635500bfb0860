"""structlog set-up: readable lines in a terminal, one JSON object per line with --log-json.

Records from the standard library's logging (uvicorn, nats-py, asyncio) go through the same
renderer, so JSON mode never mixes in plain-text lines.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from structlog.types import EventDict, WrappedLogger

# Keys the renderer has already found valid; bounded, since a key could come from data.
_MAX_KNOWN_KEYS = 1000


class IsoUtcTimestamp:
    """Adds "timestamp" exactly as TimeStamper(fmt="iso", utc=True) does, formatting date and time once a second.

    Formatting a datetime with its time zone cost more than the rest of an access line's processors.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._second: tuple[int, str] = (-1, "")  # one tuple, so a logging thread never sees half an update

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        # Whole microseconds rounded down, as datetime.now() reads the same clock.
        second, nanos = divmod(self._clock_ns(), 1_000_000_000)
        cached = self._second
        if cached[0] != second:
            text = datetime.datetime.fromtimestamp(second, datetime.UTC).isoformat().removesuffix("+00:00")
            cached = self._second = (second, text)
        micros = nanos // 1000
        # isoformat() leaves out a zero fraction.
        event_dict["timestamp"] = f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"
        return event_dict


class LogfmtRenderer:
    """Renders what structlog's LogfmtRenderer(key_order=...) renders, checking each key once instead of per line."""

    def __init__(self, key_order: Sequence[str]) -> None:
        self._key_order = tuple(key_order)
        self._known_keys: set[str] = set()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        items: list[tuple[str, Any]] = [(key, event_dict.pop(key, None)) for key in self._key_order]
        items += event_dict.items()
        elements: list[str] = []
        for key, value in items:
            if key not in self._known_keys:
                self._check(key)
            if value is None:
                elements.append(f"{key}=")
            elif value is True:
                elements.append(f"{key}")
            else:
                text = "false" if value is False else str(value)
                quoted = " " in text or "=" in text or '"' in text
                if quoted:
                    text = text.replace("\\", "\\\\").replace('"', '\\"')
                text = text.replace("\n", "\\n")
                elements.append(f'{key}="{text}"' if quoted else f"{key}={text}")
        return " ".join(elements)

    def _check(self, key: str) -> None:
        if any(c <= " " for c in key):
            raise ValueError(f'Invalid key: "{key}"')
        if len(self._known_keys) < _MAX_KNOWN_KEYS:
            self._known_keys.add(key)


_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    IsoUtcTimestamp(),
]


def configure_logging(*, json: bool, level: str = "info") -> None:
    """Configure structlog and the stdlib root logger once per process."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.types.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    elif sys.stderr.isatty():
        # Plain tracebacks: rich's (used when rich is installed) take seconds per exception with locals.
        renderer = structlog.dev.ConsoleRenderer(colors=True, exception_formatter=structlog.dev.plain_traceback)
    else:
        # Redirected to a file or a collector: logfmt reads as well and costs a fraction of the console
        # renderer, which matters for one access line per request.
        renderer = LogfmtRenderer(key_order=["timestamp", "level", "event"])
    # `exc_info` becomes an "exception" text (type, message, traceback) that logfmt and JSON render as a
    # value on the record's one line; the console renderer formats exc_info itself, and prettier.
    exceptions: list[structlog.types.Processor] = [structlog.processors.StackInfoRenderer()]
    if not isinstance(renderer, structlog.dev.ConsoleRenderer):
        exceptions.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*_SHARED, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (message and newline together): worker processes share stderr, and print()'s two
        # writes let their lines run into each other.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at info; their warnings and errors are what an operator needs.
    root.setLevel(max(numeric, logging.WARNING))
