"""Replay throughput: `roomlog replay` over a synthetic log of N events (bench/make_log.py).

Starts an embedded PostgreSQL in a fresh data directory, migrates it, writes the log, then runs
`roomlog replay` as a process against it and prints events/s (the command's own report and the wall time).

    .venv/bin/python bench/replay.py [--events 1000000] [--keep DIR] [-- replay options]

With `--keep DIR` a log written there by an earlier run is replayed again instead of writing another: runs of two
revisions alternated over the same log (PYTHONPATH=/tmp/roomlog-src for the other one) compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.make_log import write_log  # noqa: E402 (the repository root goes on the path first)
from service.cli.embedded import EmbeddedServers  # noqa: E402
from service.runtime import prepare_database  # noqa: E402

TARGET_EVENTS_PER_SECOND = 50_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", help="use (and keep) this data directory instead of a temporary one")
    parser.add_argument("replay_args", nargs="*", help="passed on to roomlog replay")
    args = parser.parse_args()
    data_dir = Path(args.keep or tempfile.mkdtemp(prefix="roomlog-bench-replay-"))
    servers = EmbeddedServers(data_dir, with_nats=False)
    database_url, _ = servers.start()
    try:
        asyncio.run(prepare_database(database_url))
        written = data_dir / "log-written"
        if written.exists() and int(written.read_text()) != args.events:
            sys.exit(f"{data_dir} holds a log of {written.read_text()} events, not {args.events}")
        if not written.exists():
            asyncio.run(write_log(database_url, events=args.events, rooms=max(args.events // 500, 10), members=5,
                                  seed=1))
            written.write_text(str(args.events))
        env = {**os.environ, "DATABASE_URL": database_url}
        postmaster = int((servers.postgres.pgdata / "postmaster.pid").read_text().split()[0])
        wal_before = asyncio.run(_wal_counters(database_url))
        pg_before, roomlog_before = _cpu_seconds(postmaster), resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "roomlog"), "replay", *args.replay_args], env=env)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        roomlog_cpu = after.ru_utime + after.ru_stime - roomlog_before.ru_utime - roomlog_before.ru_stime
        pg_cpu = _cpu_seconds(postmaster) - pg_before
        wal = [after - before for after, before in zip(asyncio.run(_wal_counters(database_url)), wal_before,
                                                        strict=True)]
        rate = args.events / seconds
        print(f"roomlog replay: {args.events:,} generated events in {seconds:.1f}s wall"
              f" = {rate:,.0f} events/s (target {TARGET_EVENTS_PER_SECOND:,}); exit {done.returncode}")
        per_event = 1e6 / args.events
        print(f"CPU per event: roomlog {roomlog_cpu * per_event:.1f} µs, PostgreSQL {pg_cpu * per_event:.1f} µs;"
              f" together they bound 2 idle cores at {2 * args.events / (roomlog_cpu + pg_cpu):,.0f} events/s")
        print(f"WAL written: {wal[0] / 2**20:,.0f} MiB, {wal[1]:,} full-page images; checkpoints: {wal[2]} done,"
              f" {wal[3]} requested (WAL past max_wal_size); shared buffers: {wal[4]:,} hits, {wal[5]:,} reads"
              f" ({100 * wal[4] / max(wal[4] + wal[5], 1):.2f} % hits), {wal[6]:,} MiB of temporary files")
        return done.returncode
    finally:
        servers.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _wal_counters(database_url: str) -> tuple[int, ...]:
    """Counters the replay moves: WAL bytes and full-page images written, checkpoints done and requested, the
    database's shared-buffer hits and reads, and MiB of temporary files (sorts and hashes past work_mem)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT w.wal_bytes::bigint, w.wal_fpi, c.num_done, c.num_requested, d.blks_hit, d.blks_read,"
            " d.temp_bytes / 1048576 FROM pg_stat_wal w, pg_stat_checkpointer c, pg_stat_database d"
            " WHERE d.datname = current_database()"
        )
    finally:
        await conn.close()
    assert row is not None
    return tuple(int(v) for v in row)


def _cpu_seconds(postmaster: int) -> float:
    """CPU of the postmaster and every backend it has reaped (their time lands in its cutime/cstime)."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    live = 0
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                stat = (child / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                live += int(stat[11]) + int(stat[12])
    return (utime + stime + cutime + cstime + live) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
