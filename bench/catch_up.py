"""Catch-up projections' cost per event: each runner (search index, KB index, support analytics) folds a generated
log (bench/make_log.py) from position 0 in its own batches, as an instance's runners follow the sends.

Starts an embedded PostgreSQL in a fresh data directory, writes the log, then drains one runner after the other and
prints, for each, events/s and CPU per event of roomlog (this process) and of PostgreSQL. Every send pays this once
per catch-up projection, on top of the request path.

    .venv/bin/python bench/catch_up.py [--events 100000]
    PYTHONPATH=/tmp/other-checkout .venv/bin/python bench/catch_up.py     # another revision, for A/B
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._embedded import on_generated_log  # noqa: E402 (the repository root goes on the path first)
from bench.replay import _cpu_seconds  # noqa: E402
from projections.catchup import CATCH_UP_PROJECTIONS, CatchUpRunner  # noqa: E402


async def drain(database_url: str, postmaster: int, events: int) -> None:
    """Run each catch-up projection's runner over the whole log and report its cost."""
    conn = await asyncpg.connect(database_url)
    try:
        for projection in CATCH_UP_PROJECTIONS:
            runner = CatchUpRunner(database_url, projection)
            cpu, pg, started = time.process_time(), _cpu_seconds(postmaster), time.perf_counter()
            while await runner.follow_once(conn):
                pass
            seconds = time.perf_counter() - started
            cpu, pg = time.process_time() - cpu, _cpu_seconds(postmaster) - pg
            print(f"{projection.name:18} {events / seconds:9,.0f} events/s  CPU per event: roomlog"
                  f" {cpu * 1e6 / events:5.1f} µs, PostgreSQL {pg * 1e6 / events:5.1f} µs")
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    return on_generated_log("roomlog-bench-catch-up-", events=args.events, rooms=max(args.events // 500, 10),
                            measure=lambda url, postmaster: drain(url, postmaster, args.events))


if __name__ == "__main__":
    raise SystemExit(main())
