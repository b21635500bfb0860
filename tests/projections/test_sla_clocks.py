"""The open-clocks read model: a batch of many clocks' events, applied with one statement per run of the same kind,
leaves the rows one event at a time would, however the log is cut into batches or re-applied."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.append import Appender
from projections.inline import InlineProjections
from projections.sla_clocks import CLOCKS_CHANNEL, SlaClocksProjection
from schemas.events import (
    Event,
    EventMetadata,
    MessageSent,
    RecordedEvent,
    SlaAtRisk,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaClockUpdated,
)
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import create_database

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CLOCKS = ("first_response:1", "resolution:1")


def _event(kind: str, clock: str, minute: int) -> Event:
    due, at_risk = T0 + timedelta(minutes=minute + 30), T0 + timedelta(minutes=minute + 20)
    metric = clock.split(":")[0]
    if kind == "started":
        return SlaClockStarted(clock_id=clock, metric=metric, due_at=due, at_risk_at=at_risk)
    if kind == "updated":
        return SlaClockUpdated(clock_id=clock, metric=metric, due_at=due, at_risk_at=None)
    if kind == "stopped":
        return SlaClockStopped(clock_id=clock, metric=metric)
    if kind == "at_risk":
        return SlaAtRisk(clock_id=clock, metric=metric, due_at=due, at_risk_at=at_risk)
    return SlaBreached(clock_id=clock, metric=metric, due_at=due, breached_at=due)


histories = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(CLOCKS),
                               st.sampled_from(("started", "updated", "stopped", "at_risk", "breached"))),
                     min_size=1, max_size=24)


async def _rows(conn: Any, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM sla_clocks WHERE tenant_id = $1 ORDER BY stream_id, clock_id", tenant)
    return [dict(r) for r in rows]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, cuts=st.lists(st.integers(1, 24), max_size=4), again=st.integers(0, 24))
async def test_batches_of_any_cut_leave_the_rows_of_one_event_at_a_time(
    runtime: Runtime, history: list[tuple[int, str, str]], cuts: list[int], again: int
) -> None:
    tenant = new_id("tn")
    streams = [new_id("tkt") for _ in range(3)]
    events = [RecordedEvent(position=n + 1, stream_id=streams[s], seq=n + 1, tenant_id=tenant,
                            created_at=T0 + timedelta(minutes=n), event=_event(kind, clock, n),
                            metadata=EventMetadata(tenant_id=tenant))
              for n, (s, clock, kind) in enumerate(history)]
    projection = SlaClocksProjection()
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    async with runtime.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            for event in events:
                await projection.apply(conn, [event])
            one_by_one = await _rows(conn, tenant)
            await conn.execute("DELETE FROM sla_clocks WHERE tenant_id = $1", tenant)
            for start, end in itertools.pairwise(bounds):
                await projection.apply(conn, events[start:end])
            assert await _rows(conn, tenant) == one_by_one
            await projection.apply(conn, events[len(events) - again:])
            assert await _rows(conn, tenant) == one_by_one, "re-applying events changed the clocks"
        finally:
            await transaction.rollback()


async def test_only_appends_that_change_a_clock_notify_the_clocks_channel(pg_server_url: str) -> None:
    # A database of its own: no other test's clocks (or the session's breach timer) notify there.
    url = await create_database(pg_server_url, "roomlog_sla_notify")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    appender = Appender(pool, InlineProjections(), writers=1)
    appender.start()
    heard: list[str] = []
    listener = await asyncpg.connect(url)
    await listener.add_listener(CLOCKS_CHANNEL, lambda *args: heard.append(args[2]))
    try:
        tenant = "tn_sla_notify"
        room = await appender.append(f"sla-notify:{new_id('s')}", [MessageSent(
            message_id=new_id("msg"), sender_id="u1", content="not a clock")], tenant_id=tenant,
            metadata=EventMetadata(tenant_id=tenant), create_stream=True)
        clock = await appender.append(f"sla-clock:{tenant}:{new_id('c')}", [_event("started", CLOCKS[0], 0)],
                                      tenant_id=tenant, metadata=EventMetadata(tenant_id=tenant), create_stream=True)
        assert room.first_seq == clock.first_seq == 1
        # Notifications reach a connection before the answer to its next query, in commit order.
        await listener.fetchval("SELECT 1")
        assert heard == [CLOCKS_CHANNEL]
    finally:
        await listener.close()
        await appender.stop()
        await pool.close()
