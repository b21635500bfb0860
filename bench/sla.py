"""SLA breach timer: 10,000 open clocks falling due over a few seconds; how late each breach is recorded.

Starts an embedded PostgreSQL in a fresh data directory, migrates it, opens N clocks (one `sla.clock_started`
each, on a stream of its own) whose due instants are spread over `--spread` seconds starting `--lead` seconds
after the last one is open, each at risk two seconds before, then runs `--instances` breach timers (each with
its own pool and appender, as separate service instances would) until every clock is breached. It prints the
lateness of each breach (the `sla.breached` event's commit time minus its due instant) as p50/p99/max, and
checks each clock got exactly one at-risk and one breach event.

    .venv/bin/python bench/sla.py [--clocks 10000] [--spread 10] [--lead 5] [--instances 2]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventstore.append import Appender
from projections.inline import InlineProjections
from schemas.events import EventMetadata, SlaClockStarted
from service.cli.embedded import EmbeddedServers
from service.consumers.sla_timer import BreachTimer
from service.runtime import prepare_database

TENANT = "tn_bench_sla"
TARGET_SECONDS = 2.0


async def open_clocks(appender: Appender, clocks: int, *, lead: float, spread: float) -> datetime:
    """Open the clocks (concurrently, so the appender batches them); the first due instant."""
    # Rough: opening runs at several hundred appends per second on the shared machine; the lead covers the rest.
    first_due = datetime.now(UTC) + timedelta(seconds=clocks / 500 + lead)
    meta = EventMetadata(tenant_id=TENANT)

    async def one(i: int) -> None:
        due = first_due + timedelta(seconds=spread * i / clocks)
        await appender.append(f"sla-clock:{TENANT}:{i}", [SlaClockStarted(
            clock_id="resolution:1", metric="resolution", due_at=due, at_risk_at=due - timedelta(seconds=2))],
            tenant_id=TENANT, metadata=meta, create_stream=True)

    for start in range(0, clocks, 1000):
        await asyncio.gather(*(one(i) for i in range(start, min(clocks, start + 1000))))
    return first_due


async def run(database_url: str, *, clocks: int, lead: float, spread: float, instances: int) -> None:
    pools = [await asyncpg.create_pool(database_url, min_size=2, max_size=6) for _ in range(instances)]
    appenders = [Appender(pool, InlineProjections(), writers=2) for pool in pools]
    for appender in appenders:
        appender.start()
    started = time.perf_counter()
    first_due = await open_clocks(appenders[0], clocks, lead=lead, spread=spread)
    opened = time.perf_counter() - started
    late = (datetime.now(UTC) - first_due).total_seconds()
    print(f"{clocks:,} clocks opened in {opened:.1f}s" + (f" (the first was due {late:.1f}s before the last opened:"
                                                          " raise --lead)" if late > 0 else ""))
    timers = [BreachTimer(pool, appender, database_url) for pool, appender in zip(pools, appenders, strict=True)]
    for timer in timers:
        await timer.start()
    try:
        while True:
            if not await pools[0].fetchval("SELECT count(*) FROM sla_clocks WHERE breached_at IS NULL"):
                break
            await asyncio.sleep(0.2)
    finally:
        for timer in timers:
            await timer.stop()
    lateness = sorted(r["late"] for r in await pools[0].fetch(
        "SELECT extract(epoch FROM recorded_at - due_at)::float8 AS late FROM sla_clocks"))
    counts = await pools[0].fetchrow(
        "SELECT count(*) FILTER (WHERE type = 'sla.breached') AS breached, count(*) FILTER (WHERE type = 'sla.at_risk')"
        " AS at_risk, count(DISTINCT stream_id) AS streams FROM events WHERE tenant_id = $1", TENANT)
    p50, p99 = lateness[len(lateness) // 2], lateness[int(len(lateness) * 0.99)]
    print(f"breach recorded after its due instant: p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms,"
          f" max {lateness[-1] * 1e3:.0f} ms, min {lateness[0] * 1e3:.0f} ms (target p99 <= {TARGET_SECONDS:.0f} s)")
    print(f"events: {counts['breached']:,} sla.breached and {counts['at_risk']:,} sla.at_risk over"
          f" {counts['streams']:,} clocks; recorded by instance: {[t.recorded for t in timers]}")
    for appender in appenders:
        await appender.stop()
    for pool in pools:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clocks", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--lead", type=float, default=5.0)
    parser.add_argument("--instances", type=int, default=2)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roomlog-bench-sla-"))
    servers = EmbeddedServers(data_dir, with_nats=False)
    database_url, _ = servers.start()
    try:
        asyncio.run(prepare_database(database_url))
        asyncio.run(run(database_url, clocks=args.clocks, lead=args.lead, spread=args.spread,
                        instances=args.instances))
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
