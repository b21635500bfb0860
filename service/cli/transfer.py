"""`roomlog export` and `roomlog import`: one tenant's log to a JSON Lines file and back into another database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import asyncpg

from eventstore.transfer import Imported, export_tenant, import_tenant
from projections.replay import apply_tenant


async def export_file(database_url: str, tenant_id: str, *, since: int, output: str) -> int:
    """Write the tenant's export to `output` ("-": stdout); how many lines."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    try:
        with _opened_for_writing(output) as out:
            lines = 0
            async for chunk in export_tenant(pool, tenant_id, since=since):
                out.write(chunk)
                lines += chunk.count(b"\n")
            out.flush()
    finally:
        await pool.close()
    return lines


async def import_file(database_url: str, path: str) -> Imported:
    """Import an export file ("-": stdin) in one transaction, rebuilding the tenant's read models in it.

    Raises ImportRefused with nothing written when the file is not importable.
    """
    conn = await asyncpg.connect(database_url)
    try:
        with _opened_for_reading(path) as source:
            async with conn.transaction():
                imported = await import_tenant(conn, _lines(source))
                await apply_tenant(conn, imported.tenant_id, after_position=imported.after_position)
    finally:
        await conn.close()
    return imported


def _lines(source: BinaryIO) -> Iterator[bytes]:
    yield from source


class _opened_for_writing:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.path == "-":
            return sys.stdout.buffer
        self.file = Path(self.path).open("wb")
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


class _opened_for_reading:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.path == "-":
            return sys.stdin.buffer
        self.file = Path(self.path).open("rb")
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
