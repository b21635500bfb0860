"""The server's side of a WebSocket resume, without the socket: a room's log as catch-up frame texts, page by page.

Writes one room of --events events (bench/make_log.py's mix: sends, edits, reactions, deletions) into a fresh
embedded PostgreSQL, builds the read models (`roomlog replay`'s code), then times --runs reads of the whole room
in pages of --page events, alternately by the two ways the gateway has built frames: `rows` decodes each stored
row into its Struct, redacts and encodes it (before service/realtime/catch_up.py), `sql` has PostgreSQL build each
frame's text from the stored JSON. Prints the seconds and the CPU (this process, PostgreSQL) per resume of each,
and checks both give the same frames.

    .venv/bin/python bench/resume_frames.py [--events 10000] [--page 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._embedded import on_generated_log  # noqa: E402 (the repository root goes on the path first)
from bench.replay import _cpu_seconds  # noqa: E402
from eventstore.read import read_stream  # noqa: E402
from projections.messages import redact_deleted  # noqa: E402
from projections.replay import replay  # noqa: E402
from service.realtime.catch_up import read_frames  # noqa: E402
from service.realtime.frames import encode_event_frame  # noqa: E402


async def by_rows(pool: asyncpg.Pool, room_id: str, page: int, now: datetime) -> list[str]:
    texts: list[str] = []
    while True:
        events = await redact_deleted(pool, await read_stream(pool, room_id, after_seq=len(texts), limit=page), now=now)
        texts += [encode_event_frame(e) for e in events]
        if len(events) < page:
            return texts


async def by_sql(pool: asyncpg.Pool, room_id: str, page: int, now: datetime) -> list[str]:
    texts: list[str] = []
    while True:
        frames = await read_frames(pool, room_id, after_seq=len(texts), limit=page, user_id="nobody", now=now)
        texts += [frames.frame(i) for i in range(len(frames))]
        if len(frames) < page:
            return texts


async def measure(database_url: str, postmaster: int, args: argparse.Namespace) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await replay(pool)
        room_id = await pool.fetchval("SELECT stream_id FROM streams WHERE stream_id LIKE 'room_%'"
                                      " ORDER BY last_seq DESC LIMIT 1")
        now = datetime.now(UTC)
        times: dict[str, list[float]] = {"rows": [], "sql": []}
        cpu = {"rows": [0.0, 0.0], "sql": [0.0, 0.0]}  # this process, PostgreSQL
        results: dict[str, list[str]] = {}
        for _ in range(args.runs):
            for name, read in (("rows", by_rows), ("sql", by_sql)):
                started, mine, pg = time.perf_counter(), time.process_time(), _cpu_seconds(postmaster)
                results[name] = await read(pool, room_id, args.page, now)
                times[name].append(time.perf_counter() - started)
                cpu[name][0] += time.process_time() - mine
                cpu[name][1] += _cpu_seconds(postmaster) - pg
        same = [msgspec.json.decode(t) for t in results["rows"]] == [msgspec.json.decode(t) for t in results["sql"]]
        print(f"room of {len(results['sql']):,} events, pages of {args.page}; identical frames: {same}")
        for name, seconds in times.items():
            print(f"{name:4} median {statistics.median(seconds) * 1000:6.1f} ms, CPU per resume: this process"
                  f" {cpu[name][0] * 1000 / args.runs:5.1f} ms, PostgreSQL {cpu[name][1] * 1000 / args.runs:5.1f} ms;"
                  " runs " + " ".join(f"{s * 1000:.1f}" for s in seconds))
    finally:
        await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    return on_generated_log("roomlog-bench-resume-", events=args.events, rooms=1,
                            measure=lambda url, postmaster: measure(url, postmaster, args))


if __name__ == "__main__":
    raise SystemExit(main())
