"""The raw append ceiling: one transaction per append straight through asyncpg, no HTTP, no group commit.

W writers (one connection each) append one `message.sent` at a time to a random one of R streams, each
append one statement and so its own commit, for S seconds: the textbook append (take the stream's next seq
under its row lock, insert the event with its unique idempotency key) into roomlog's `events` and `streams`,
without the service's guards, projections and NOTIFY. `--statement rl_append` runs instead the service's
own append statement (`rl_append`, migration 005, with its NOTIFY, without the inline projections) for
one append at a time. It runs in a database of its own (created, migrated and
dropped in the cluster of DATABASE_URL), so nothing of roomlog's (relay, catch-up projections) follows it.
`bench/send.py` runs it before and after its load and prints the ratio of sends/s to this ceiling.

    .venv/bin/python bench/raw_append.py DATABASE_URL [--writers 32] [--rooms 100] [--seconds 5]
                                         [--statement plain|rl_append]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventstore.append import AppendRequest, NoInlineHook, _write_batch, append_statement
from schemas.events import EventMetadata, MessageSent, encode_event, encode_metadata
from service.runtime import prepare_database

_DATABASE = "roomlog_raw_append"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--statement", choices=["plain", "rl_append"], default="plain")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.database_url, writers=args.writers, rooms=args.rooms,
                                         seconds=args.seconds, statement=args.statement))))


def _other_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def measure(database_url: str, *, writers: int, rooms: int, seconds: float,
                  statement: str = "plain") -> dict[str, float]:
    """Appends per second (and their count) of `writers` one-append transactions over `rooms` streams."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_DATABASE}")
        await admin.execute(f"CREATE DATABASE {_DATABASE}")
        url = _other_database(database_url, _DATABASE)
        await prepare_database(url)
        result = await _run(url, writers=writers, rooms=rooms, seconds=seconds, statement=statement)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {_DATABASE} WITH (FORCE)")
        await admin.close()
    return result


_APPEND = """
WITH s AS (UPDATE streams SET last_seq = last_seq + 1 WHERE stream_id = $1 RETURNING stream_id, tenant_id, last_seq)
INSERT INTO events (stream_id, seq, tenant_id, type, data, metadata, idempotency_key)
SELECT s.stream_id, s.last_seq, s.tenant_id, 'message.sent', $2::jsonb, $3::jsonb, $4 FROM s
"""


async def _run(url: str, *, writers: int, rooms: int, seconds: float, statement: str) -> dict[str, float]:
    tenant = "tn_raw_" + secrets.token_hex(4)
    streams = [f"rm_raw_{i}" for i in range(rooms)]
    metadata = EventMetadata(tenant_id=tenant, actor="u_raw")
    meta = encode_metadata(metadata)
    hook, service_statement = NoInlineHook(), append_statement(())

    async def append(conn: asyncpg.Connection) -> None:
        if statement == "rl_append":
            [outcome] = await _write_batch(conn, hook, service_statement, [AppendRequest(
                random.choice(streams), tenant, [_message()], metadata, idempotency_key=secrets.token_hex(8))])
            if isinstance(outcome, Exception):
                raise outcome
            return
        status = await conn.execute(_APPEND, random.choice(streams), encode_event(_message()), meta,
                                    secrets.token_hex(8))
        if status != "INSERT 0 1":
            raise RuntimeError(f"append wrote {status}")

    pool = await asyncpg.create_pool(url, min_size=writers, max_size=writers)
    counts = [0] * writers
    try:
        await pool.executemany("INSERT INTO streams (stream_id, tenant_id) VALUES ($1, $2)",
                               [(s, tenant) for s in streams])
        deadline = time.perf_counter() + seconds

        async def writer(n: int) -> None:
            async with pool.acquire() as conn:
                while time.perf_counter() < deadline:
                    await append(conn)
                    counts[n] += 1

        started = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return {"appends_per_second": sum(counts) / elapsed, "appends": sum(counts), "seconds": elapsed}


def _message() -> MessageSent:
    return MessageSent(message_id="m_" + secrets.token_hex(8), sender_id="u_raw", content="raw append",
                       client_msg_id=secrets.token_hex(8))


if __name__ == "__main__":
    main()
