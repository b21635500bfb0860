"""Support analytics at scale: one tenant with many sessions and tickets, `GET /support/analytics` for 30 days by day.

Starts embedded PostgreSQL and nats-server in a temporary directory and a Runtime on them. The facts are built
by the analytics projection's own `apply` (projections/support_analytics.py), in batches of 1,000 events with a
transaction each as the catch-up runner applies them, from events made here: sessions (created, assigned,
customer and agent messages, sometimes a transfer, ended, often rated) and tickets (created, assigned and
opened, internal and public comments, SLA clocks stopped or breached, solved, sometimes reopened and solved
again) spread evenly over the last `--days` days. They are not appended to the log: the log's `created_at` is
the commit's own time, and a report over 30 days needs history older than the few minutes the load takes. It
prints the apply rate (facts and their hourly rollup) and the CPU it took per event (the applying PostgreSQL
backend's, from /proc, and this process's), runs `VACUUM ANALYZE` (what autovacuum does after a bulk
load), then asks for the last 30 days grouped by day (Europe/Berlin) `--requests` times through the app
in-process (after 5 unmeasured) and prints p50/p99 over HTTP and for the report alone, the latter in turn summed
from the hourly rollup in one statement (what the route does in a whole-hour zone), the same inside a read-only
transaction that sets work_mem first (what the route did before), and aggregated from the facts (what it did
before the rollup, and still does in a zone such as Asia/Kolkata), and checks all give the same figures. The seed
is printed.

    .venv/bin/python bench/analytics.py [--sessions 50000] [--tickets 100000] [--days 60] [--requests 200] [--seed N]
        [--profile PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
from _embedded import embedded_runtime  # bench/ is on sys.path when run as a script

from projections.support_analytics import SupportAnalyticsProjection
from schemas.events import (
    Event,
    EventMetadata,
    MessageSent,
    RecordedEvent,
    SlaBreached,
    SlaClockStopped,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionRated,
    SupportSessionTransferred,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketUpdated,
)
from service.app import create_app
from service.commands.support.analytics import report
from service.identity.tenants import create_tenant
from service.runtime import Runtime

TARGET_P99_MS = 100.0
BATCH = 1000
WARM_UP = 5
AGENTS = 50
CHANNELS = ("chat", "chat", "chat", "email", "phone", "whatsapp")
CATEGORIES = ("billing", "refund", "delivery", "account", "order_issue", "tech", "returns", "other")
TIMEZONE = "Europe/Berlin"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60, help="the history is spread over this many days")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--profile", metavar="PATH", help="py-spy record the HTTP requests into PATH (raw"
                        " collapsed stacks, summarised here; .svg for a flame graph)")
    args = parser.parse_args(argv)
    print(f"seed {args.seed}")
    asyncio.run(run(sessions=args.sessions, tickets=args.tickets, days=args.days, requests=args.requests,
                    seed=args.seed, profile=args.profile))
    if args.profile and not args.profile.endswith(".svg"):
        from _profile import summarise_collapsed  # bench/ is on sys.path when run as a script
        summarise_collapsed(Path(args.profile), root=Path(__file__).resolve().parent.parent)
    return 0


async def run(*, sessions: int, tickets: int, days: int, requests: int, seed: int, profile: str | None = None) -> None:
    async with embedded_runtime("roomlog-analytics-bench-", db_pool_size=10) as runtime:
        await _drive(runtime, random.Random(seed), sessions=sessions, tickets=tickets, days=days,
                     requests=requests, profile=profile)


def _profiler(path: str) -> subprocess.Popen[bytes]:
    """py-spy recording this process until it is sent SIGINT."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    fmt = "flamegraph" if path.endswith(".svg") else "raw"
    return subprocess.Popen([py_spy, "record", "--pid", str(os.getpid()), "--rate", "500", "--format", fmt,
                             "--output", path, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _drive(runtime: Runtime, rng: random.Random, *, sessions: int, tickets: int, days: int,
                 requests: int, profile: str | None) -> None:
    conn = await asyncpg.connect(runtime.settings.database_url)
    try:
        created = await create_tenant(conn, "bench")
        await conn.execute("INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, 'ag00', 'a',"
                           " 'agent')", created.tenant_id)
    finally:
        await conn.close()
    tenant = created.tenant_id
    now = datetime.now(UTC)
    history = _history(rng, tenant, sessions=sessions, tickets=tickets, since=now - timedelta(days=days), now=now)
    projection = SupportAnalyticsProjection()
    async with runtime.pool.acquire() as conn:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        started, cpu, db_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(backend)
        for n in range(0, len(history), BATCH):
            async with conn.transaction():
                await projection.apply(conn, history[n:n + BATCH])
        seconds = time.perf_counter() - started
        cpu, db_cpu = time.process_time() - cpu, _cpu_seconds(backend) - db_cpu
    rows = await runtime.pool.fetchval("SELECT count(*) FROM support_analytics WHERE tenant_id = $1", tenant)
    hourly = await runtime.pool.fetchval("SELECT count(*) FROM support_analytics_hourly WHERE tenant_id = $1", tenant)
    print(f"applied {len(history):,} events ({sessions:,} sessions, {tickets:,} tickets over {days} days) in"
          f" {seconds:.1f}s = {len(history) / seconds:,.0f} events/s; {rows:,} fact rows, {hourly:,} rollup rows")
    print(f"CPU per event: {1e6 * db_cpu / len(history):.0f} us in PostgreSQL (the applying backend),"
          f" {1e6 * cpu / len(history):.0f} us in Python; load {_load()}")
    for table in ("support_analytics", "support_analytics_hourly", "support_analytics_daily"):
        await runtime.pool.execute(f"VACUUM ANALYZE {table}")

    tz = ZoneInfo(TIMEZONE)
    end = now.astimezone(tz).date()
    start = end - timedelta(days=29)
    params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "group_by": "day", "timezone": TIMEZONE}
    headers = {"X-API-Key": created.api_key, "X-User-Id": "ag00"}
    transport = httpx.ASGITransport(app=create_app(runtime.settings, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.bench") as client:
        for _ in range(WARM_UP):
            await client.get("/support/analytics", params=params, headers=headers)
        spy = _profiler(profile) if profile else None
        if spy is not None:
            await asyncio.sleep(1)  # py-spy attaching
        http_ms: list[float] = []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = await client.get("/support/analytics", params=params, headers=headers)
            http_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
    body = response.json()
    # Three ways in turn: the route's (one statement on the rollup), the rollup read as the route read it before
    # (in a read-only transaction that set work_mem first: four round trips), and the facts aggregated.
    modes = ("rollup", "rollup in a transaction", "facts")
    timings: dict[str, list[float]] = {mode: [] for mode in modes}
    answers = {}
    for n in range(len(modes) * requests):
        mode = modes[n % len(modes)]
        t0 = time.perf_counter()
        async with runtime.pool.acquire() as conn:
            answers[mode] = await _report(conn, tenant, start, end, tz, mode)
        timings[mode].append((time.perf_counter() - t0) * 1000)
    assert answers["rollup"] == answers["facts"] == answers["rollup in a transaction"], \
        "the rollup and the facts should give the same figures"
    summary = body["summary"]
    print(f"30 days ({start} to {end}, {TIMEZONE}) by day: {summary['total_sessions']:,} sessions,"
          f" {summary['total_tickets']:,} tickets, {len(body['series'])} points, {len(body['by_agent'])} agents;"
          f" FCR {summary['first_contact_resolution']}%, CSAT {summary['satisfaction_score']}"
          f" ({summary['satisfaction_percent']}% 4-5)")
    p99 = _p99(http_ms)
    verdict = "met" if p99 <= TARGET_P99_MS else "NOT met"
    print(f"http p50 {statistics.median(http_ms):.2f} ms, p99 {p99:.2f} ms over {requests} requests"
          f" (target p99 <= {TARGET_P99_MS:.0f} ms: {verdict})")
    for mode in modes:
        ms = timings[mode]
        print(f"report alone, {mode}: p50 {statistics.median(ms):.2f} ms, p99 {_p99(ms):.2f} ms")
    for mode in modes[1:]:
        print(f"{mode} / rollup: p50 x{statistics.median(timings[mode]) / statistics.median(timings['rollup']):.2f},"
              f" p99 x{_p99(timings[mode]) / _p99(timings['rollup']):.2f}")
    print(f"identical figures; load {_load()}")


async def _report(conn: Any, tenant: str, start: date, end: date, tz: ZoneInfo,
                  mode: str) -> object:
    args: dict[str, Any] = {"start": start, "end": end, "tz": tz, "group_by": "day", "reopen_days": 7}
    if mode != "rollup in a transaction":
        return await report(conn, tenant, rollup=mode == "rollup", **args)
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL work_mem = '64MB'")
        return await report(conn, tenant, **args)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a local process so far (/proc/<pid>/stat), 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


class _Log:
    """Events made in log order, each given the next position."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.meta = EventMetadata(tenant_id=tenant)
        self.events: list[tuple[datetime, str, Event]] = []

    def add(self, at: datetime, stream: str, event: Event) -> None:
        self.events.append((at, stream, event))

    def recorded(self) -> list[RecordedEvent]:
        # Log order is time order; seq is not read by this projection.
        ordered = sorted(self.events, key=lambda e: e[0])
        return [RecordedEvent(position=n + 1, stream_id=stream, seq=1, tenant_id=self.tenant, created_at=at,
                              event=event, metadata=self.meta) for n, (at, stream, event) in enumerate(ordered)]


def _history(rng: random.Random, tenant: str, *, sessions: int, tickets: int, since: datetime,
             now: datetime) -> list[RecordedEvent]:
    log = _Log(tenant)
    span = (now - since).total_seconds()
    for n in range(sessions):
        _session(log, rng, f"sess{n}", since + timedelta(seconds=rng.uniform(0, span)))
    for n in range(tickets):
        _ticket(log, rng, f"tkt{n}", since + timedelta(seconds=rng.uniform(0, span)))
    return log.recorded()


def _agent(rng: random.Random) -> str:
    return f"ag{rng.randrange(AGENTS):02}"


def _session(log: _Log, rng: random.Random, sid: str, at: datetime) -> None:
    room, customer = f"room-{sid}", f"c-{sid}"
    log.add(at, sid, SupportSessionCreated(session_id=sid, room_id=room, customer_id=customer,
                                           channel=rng.choice(CHANNELS), priority="normal", created_by=customer))
    log.add(at, room, MessageSent(message_id=f"m0-{sid}", sender_id=customer, content="help"))
    t = at + timedelta(seconds=rng.uniform(1, 60))
    log.add(t, "desk", SupportSessionAssigned(session_id=sid, agent_id=_agent(rng), policy_version="p", candidates=[]))
    for k in range(rng.randint(1, 4)):
        t += timedelta(seconds=rng.uniform(5, 120))
        log.add(t, room, MessageSent(message_id=f"m{k + 1}-{sid}", sender_id="agent", content="reply"))
    if rng.random() < 0.1:
        t += timedelta(seconds=30)
        log.add(t, sid, SupportSessionTransferred(target_type="agent", target_id=_agent(rng), by="agent"))
        log.add(t, "desk", SupportSessionAssigned(session_id=sid, agent_id=_agent(rng), policy_version="p",
                                                  candidates=[]))
    t += timedelta(minutes=rng.uniform(1, 30))
    log.add(t, sid, SupportSessionEnded(resolution="done", status="resolved" if rng.random() < 0.85 else "closed",
                                        by="agent"))
    if rng.random() < 0.6:
        log.add(t + timedelta(minutes=1), sid, SupportSessionRated(score=rng.choices((1, 2, 3, 4, 5),
                                                                                     (1, 1, 2, 4, 8))[0], by=customer))


def _ticket(log: _Log, rng: random.Random, tid: str, at: datetime) -> None:
    log.add(at, tid, SupportTicketCreated(ticket_id=tid, number=1, display_number="TKT-2026-0001", subject="s",
                                          description="d", customer_id=f"c-{tid}", priority="normal",
                                          created_by=f"c-{tid}", category=rng.choice(CATEGORIES)))
    t = at + timedelta(minutes=rng.uniform(1, 60))
    log.add(t, tid, SupportTicketUpdated(by="ag00", changed=["status", "assigned_to"], status="open",
                                         assigned_to=_agent(rng)))
    if rng.random() < 0.3:
        log.add(t, tid, SupportTicketCommented(comment_id=f"n-{tid}", author_id="ag00", author_type="agent",
                                               content="internal", public=False))
    for k in range(rng.randint(1, 3)):
        t += timedelta(minutes=rng.uniform(5, 240))
        log.add(t, tid, SupportTicketCommented(comment_id=f"c{k}-{tid}", author_id="ag00", author_type="agent",
                                               content="reply"))
        if k == 0:
            late = rng.random() < 0.1
            if late:
                log.add(t, tid, SlaBreached(clock_id="r", metric="first_response", due_at=t, breached_at=t))
            log.add(t, tid, SlaClockStopped(clock_id="r", metric="first_response"))
    t += timedelta(hours=rng.uniform(1, 48))
    log.add(t, tid, SupportTicketUpdated(by="ag00", changed=["status"], status="solved"))
    log.add(t, tid, SlaClockStopped(clock_id="s", metric="resolution"))
    if rng.random() < 0.1:
        t += timedelta(days=rng.uniform(0.5, 10))
        log.add(t, tid, SupportTicketUpdated(by="c", changed=["status"], status="open", reason="requester_comment"))
        t += timedelta(hours=rng.uniform(1, 24))
        log.add(t, tid, SupportTicketUpdated(by="ag00", changed=["status"], status="solved"))


if __name__ == "__main__":
    raise SystemExit(main())
