"""structlog set-up: readable lines in a terminal, one JSON object per line with --log-json.

Records from the standard library's logging (uvicorn, nats-py, asyncio) go through the same
renderer, so JSON mode never mixes in plain-text lines.
"""

from __future__ import annotations

import logging
import sys

import structlog

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
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
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        # Redirected to a file or a collector: logfmt reads as well and costs a fraction of the console
        # renderer, which matters for one access line per request.
        renderer = structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    exceptions = structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer()
    structlog.configure(
        processors=[*_SHARED, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at info; their warnings and errors are what an operator needs.
    root.setLevel(max(numeric, logging.WARNING))
