"""Runtime configuration, read from flags and ROOMLOG_* / DATABASE_URL / NATS_URL environment variables."""

from __future__ import annotations

import msgspec


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str | None = None
    nats_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = ".roomlog"
    workers: int = 1
    log_json: bool = False
    log_level: str = "info"
    access_log: bool = True
    max_body_bytes: int = 64 * 1024
    db_pool_size: int = 10
    # Group commit: concurrent appends share one transaction; this many batches may be in flight at once.
    append_writers: int = 4
    append_max_batch: int = 500
