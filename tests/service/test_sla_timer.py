"""The SLA breach timer: at-risk and breach recorded once each, on a fake clock, across racing instances, live."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from eventstore.append import Appender
from projections.inline import InlineProjections
from schemas.events import EventMetadata, SlaClockStarted, SlaClockStopped, SlaClockUpdated
from service.consumers.sla_timer import BreachTimer
from service.runtime import Runtime

# In the future, so the session runtime's own (real-time) timer leaves these clocks to the fake clock.
T0 = (datetime.now(UTC) + timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def start_clock(runtime: Runtime, *, due: datetime | None, at_risk: datetime | None = None,
                      tenant_id: str = "tn_sla_timer") -> str:
    stream = f"sla-clock:{tenant_id}:{uuid.uuid4().hex[:12]}"
    await runtime.appender.append(stream, [SlaClockStarted(clock_id="first_response:1", metric="first_response",
                                                           due_at=due, at_risk_at=at_risk)],
                                  tenant_id=tenant_id, metadata=EventMetadata(tenant_id=tenant_id), create_stream=True)
    return stream


async def types_in(pool: asyncpg.Pool, stream: str) -> list[str]:
    return [r["type"] for r in await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq", stream)]


async def change(runtime: Runtime, stream: str, event: SlaClockUpdated | SlaClockStopped) -> None:
    await runtime.appender.append(stream, [event], tenant_id="tn_sla_timer",
                                  metadata=EventMetadata(tenant_id="tn_sla_timer"))


@pytest.fixture
async def second_instance(runtime: Runtime, database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Appender]]:
    """A second instance's pool and appender (writers of its own) over the same database."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    appender = Appender(pool, InlineProjections(), writers=1)
    appender.start()
    yield pool, appender
    await appender.stop()
    await pool.close()


async def test_at_risk_then_breach_are_recorded_once_each_when_the_fake_clock_reaches_them(
    runtime: Runtime, database_url: str
) -> None:
    stream = await start_clock(runtime, due=T0 + timedelta(minutes=10), at_risk=T0 + timedelta(minutes=7))
    clock = FakeClock(T0)
    timer = BreachTimer(runtime.pool, runtime.appender, database_url, now=clock)
    assert await timer.record(stream, "first_response:1") == 0
    clock.now = T0 + timedelta(minutes=7)
    assert await timer.record(stream, "first_response:1") == 1
    assert await timer.record(stream, "first_response:1") == 0
    clock.now = T0 + timedelta(minutes=10)
    assert await timer.record(stream, "first_response:1") == 1
    clock.now = T0 + timedelta(days=1)
    assert await timer.record(stream, "first_response:1") == 0
    assert await types_in(runtime.pool, stream) == ["sla.clock_started", "sla.at_risk", "sla.breached"]
    row = await runtime.pool.fetchrow("SELECT data::jsonb ->> 'breached_at' AS at FROM events"
                                      " WHERE stream_id = $1 AND type = 'sla.breached'", stream)
    due = T0 + timedelta(minutes=10)
    assert row is not None and row["at"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")  # the due instant, not the record's


async def test_a_paused_or_stopped_clock_records_nothing_and_a_moved_one_breaches_at_its_new_due_time(
    runtime: Runtime, database_url: str
) -> None:
    paused = await start_clock(runtime, due=T0 + timedelta(minutes=10))
    stopped = await start_clock(runtime, due=T0 + timedelta(minutes=10))
    await change(runtime, paused, SlaClockUpdated(clock_id="first_response:1", metric="first_response", due_at=None))
    await change(runtime, stopped, SlaClockStopped(clock_id="first_response:1", metric="first_response"))
    clock = FakeClock(T0 + timedelta(hours=1))
    timer = BreachTimer(runtime.pool, runtime.appender, database_url, now=clock)
    assert [await timer.record(s, "first_response:1") for s in (paused, stopped)] == [0, 0]
    await change(runtime, paused, SlaClockUpdated(clock_id="first_response:1", metric="first_response",
                                                  due_at=T0 + timedelta(hours=2)))
    assert await timer.record(paused, "first_response:1") == 0
    clock.now = T0 + timedelta(hours=2)
    assert await timer.record(paused, "first_response:1") == 1
    assert (await types_in(runtime.pool, paused))[-1] == "sla.breached"


async def test_two_instances_racing_record_each_breach_once(
    runtime: Runtime, database_url: str, second_instance: tuple[asyncpg.Pool, Appender]
) -> None:
    streams = [await start_clock(runtime, due=T0, at_risk=T0 - timedelta(minutes=1)) for _ in range(20)]
    clock = FakeClock(T0 + timedelta(seconds=1))
    one = BreachTimer(runtime.pool, runtime.appender, database_url, now=clock)
    two = BreachTimer(*second_instance, database_url, now=clock)
    await asyncio.gather(*(t.record(s, "first_response:1") for s in streams for t in (one, two)))
    # Counted before the passes below: those also record other tests' clocks (tickets') due by the fake clock.
    assert one.recorded + two.recorded == 40
    await asyncio.gather(one.fire_due(), two.fire_due())
    for stream in streams:
        assert await types_in(runtime.pool, stream) == ["sla.clock_started", "sla.at_risk", "sla.breached"]


async def test_the_running_timer_records_a_breach_within_two_seconds_and_catches_up_after_a_restart(
    runtime: Runtime, database_url: str
) -> None:
    timer = BreachTimer(runtime.pool, runtime.appender, database_url)
    await timer.start()
    try:
        due = datetime.now(UTC) + timedelta(seconds=0.5)
        stream = await start_clock(runtime, due=due)
        row = await wait_for_breach(runtime.pool, stream)
        assert timedelta(0) <= row["recorded_at"] - due < timedelta(seconds=2)
    finally:
        await timer.stop()
    missed = await start_clock(runtime, due=datetime.now(UTC) - timedelta(seconds=1))  # due while none runs
    restarted = BreachTimer(runtime.pool, runtime.appender, database_url)
    await restarted.start()
    try:
        await wait_for_breach(runtime.pool, missed)
    finally:
        await restarted.stop()
    assert (await types_in(runtime.pool, missed)).count("sla.breached") == 1


async def wait_for_breach(pool: asyncpg.Pool, stream: str) -> asyncpg.Record:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = await pool.fetchrow("SELECT breached_at, recorded_at FROM sla_clocks WHERE stream_id = $1"
                                  " AND breached_at IS NOT NULL", stream)
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("no breach recorded within 5 s")
