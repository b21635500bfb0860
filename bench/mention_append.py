"""What the mention counters cost the send path: appends through the service's `Appender`, with and without
`projections/mentions.py` among the inline projections, alternated in one process on one database.

Starts an embedded PostgreSQL in a fresh directory, creates --rooms rooms of 4 members, then --rounds times
runs --sends sends (every one mentioning another member, every fourth `@room` too, or none with
--no-mentions) with --concurrency appends in flight, once with every inline projection and once without the
mentions projection, and prints sends/s and the CPU per send of PostgreSQL (its processes' time in /proc) and of
this process (the appender) for each. The difference is the counters' share of the append.

    .venv/bin/python bench/mention_append.py [--rooms 100] [--sends 4000] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventstore.append import Appender
from projections.inline import INLINE_PROJECTIONS, InlineProjections
from projections.mentions import MentionsProjection
from schemas.api import SendMessage
from schemas.events import EventMetadata, MemberJoined, RoomCreated
from service.cli.embedded import EmbeddedPostgres
from service.domain.messages import decide_send
from service.identity.ids import new_id
from service.runtime import prepare_database

TENANT = "tn_mention_bench"
MEMBERS = ("a", "b", "c", "d")


def main() -> int:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--sends", type=int, default=4000, help="sends per run (default 4000)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each variant, alternated (default 3)")
    p.add_argument("--concurrency", type=int, default=32, help="appends in flight (default 32)")
    p.add_argument("--no-mentions", action="store_true", help="sends without mentions")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="roomlog-mention-append-"))
    pg = EmbeddedPostgres(base / "pg")
    url = pg.start()
    args.pgdata = base / "pg"
    try:
        asyncio.run(_run(url, args))
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


async def _run(url: str, args: argparse.Namespace) -> None:
    await prepare_database(url)
    pool = await asyncpg.create_pool(url, min_size=4, max_size=8)
    assert pool is not None
    variants = {
        "with mentions projection": InlineProjections(),
        "without": InlineProjections(tuple(p for p in INLINE_PROJECTIONS if not isinstance(p, MentionsProjection))),
    }
    rooms = await _rooms(pool, args.rooms)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, projections in variants.items():
            results[name].append(await _measure(pool, projections, rooms, args))
            rate, pg_us, own_us = results[name][-1]
            print(f"{name:26} {rate:8,.0f} sends/s  CPU per send: PostgreSQL {pg_us:6.1f} µs, "
                  f"appender {own_us:6.1f} µs", flush=True)
    for name, runs in results.items():
        rate, pg_us, own_us = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"median {name:19} {rate:8,.0f} sends/s  CPU per send: PostgreSQL {pg_us:6.1f} µs, "
              f"appender {own_us:6.1f} µs")
    await pool.close()


async def _rooms(pool: asyncpg.Pool, count: int) -> list[str]:
    appender = Appender(pool, InlineProjections())
    appender.start()
    try:
        rooms = [new_id("room") for _ in range(count)]
        for room_id in rooms:
            await appender.append(room_id, [RoomCreated(room_id=room_id, room_type="group", created_by="a"),
                                            *(MemberJoined(user_id=u, role="member", added_by="a") for u in MEMBERS)],
                                  tenant_id=TENANT, metadata=EventMetadata(TENANT, "a"), create_stream=True)
        return rooms
    finally:
        await appender.stop()


async def _measure(pool: asyncpg.Pool, projections: InlineProjections, rooms: list[str],
                   args: argparse.Namespace) -> tuple[float, float, float]:
    """(sends/s, µs of PostgreSQL CPU per send, µs of this process's CPU per send) of one run."""
    appender = Appender(pool, projections)
    appender.start()
    pg_before, own_before = _postgres_cpu(args.pgdata), time.process_time()
    queue = list(range(args.sends))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            room_id = rooms[n % len(rooms)]
            sender = MEMBERS[n % len(MEMBERS)]
            mentions = [] if args.no_mentions else [MEMBERS[(n + 1) % len(MEMBERS)], *(["@room"] if n % 4 == 0 else [])]
            event = decide_send(sender, SendMessage(content=f"message {n}", mentions=mentions), new_id("msg"))
            await appender.append(room_id, [event], tenant_id=TENANT, metadata=EventMetadata(TENANT, sender))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        await appender.stop()
    elapsed = time.perf_counter() - started
    pg, own = _postgres_cpu(args.pgdata) - pg_before, time.process_time() - own_before
    return args.sends / elapsed, 1e6 * pg / args.sends, 1e6 * own / args.sends


def _postgres_cpu(pgdata: Path) -> float:
    """CPU seconds (user + system) so far of the postmaster of `pgdata` and its backends, from /proc."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":
    raise SystemExit(main())
