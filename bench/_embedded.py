"""Embedded servers in a temporary directory for in-process benchmarks: a started Runtime on PostgreSQL and NATS,
or PostgreSQL alone holding a generated log (bench/make_log.py)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from schemas.config import Settings
from service.cli.embedded import EmbeddedPostgres, EmbeddedServers, NatsServer
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


def on_generated_log(prefix: str, *, events: int, rooms: int,
                     measure: Callable[[str, int], Coroutine[Any, Any, None]]) -> int:
    """Write a log of `events` over `rooms` (5 members each) into a fresh embedded PostgreSQL (no NATS), run
    `measure(database_url, postmaster_pid)` on it, and remove everything; 0 for the exit status."""
    from make_log import write_log  # bench/ is on sys.path when run as a script

    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    servers = EmbeddedServers(data_dir, with_nats=False)
    database_url, _ = servers.start()
    try:
        asyncio.run(prepare_database(database_url))
        asyncio.run(write_log(database_url, events=events, rooms=rooms, members=5, seed=1))
        postmaster = int((servers.postgres.pgdata / "postmaster.pid").read_text().split()[0])
        asyncio.run(measure(database_url, postmaster))
        return 0
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
