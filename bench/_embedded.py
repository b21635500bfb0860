"""A started Runtime on embedded PostgreSQL and NATS in a temporary directory, for in-process benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from schemas.config import Settings
from service.cli.embedded import EmbeddedPostgres, NatsServer
from service.observability.logs import configure_logging
from service.runtime import Runtime, prepare_database, start_runtime, stop_runtime


@contextlib.asynccontextmanager
async def embedded_runtime(prefix: str, **settings: Any) -> AsyncIterator[Runtime]:
    """Start fresh servers and a Runtime on them (rate limits and access log off, plus `settings`); remove
    everything on exit."""
    configure_logging(json=False, level="warning")
    base = Path(tempfile.mkdtemp(prefix=prefix))
    pg, nats = EmbeddedPostgres(base / "pg"), NatsServer(base / "nats")
    try:
        url = pg.start()
        nats.start()
        await prepare_database(url)
        runtime = await start_runtime(Settings(database_url=url, nats_url=nats.url, default_rate_limit=0,
                                               default_send_rate_limit=0, access_log=False, **settings))
        try:
            yield runtime
        finally:
            await stop_runtime(runtime)
    finally:
        nats.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
