"""Support analytics: the facts projection's definitions on hand-built histories, and GET /support/analytics."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import pytest

from projections.replay import replay
from projections.support_analytics import SupportAnalyticsProjection, rollup_differences
from schemas.analytics import SupportAnalytics
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
from service.commands.support.analytics import report
from service.domain.support.analytics import GROUPS, on_whole_hours
from tests.conftest import Tenant, error_of, make_tenant
from tests.service.test_search import caught_up

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; Berlin is UTC+1 until the end of March
DAY = T0.date()


class History:
    """Events of one made-up tenant with the instants they were written at, in log order."""

    def __init__(self) -> None:
        self.tenant_id = f"tn_an_{uuid.uuid4().hex[:8]}"
        self.events: list[RecordedEvent] = []

    def add(self, stream: str, at: datetime, *events: Event) -> None:
        for event in events:
            seq = 1 + sum(1 for e in self.events if e.stream_id == stream)
            self.events.append(RecordedEvent(position=len(self.events) + 1, stream_id=stream, seq=seq,
                                             tenant_id=self.tenant_id, created_at=at, event=event,
                                             metadata=EventMetadata(tenant_id=self.tenant_id)))

    def session(self, sid: str, at: datetime, channel: str, customer: str) -> None:
        self.add(sid, at, SupportSessionCreated(session_id=sid, room_id=f"room-{sid}", customer_id=customer,
                                                channel=channel, priority="normal", created_by=customer))

    def say(self, sid: str, at: datetime, sender: str, **fields: Any) -> None:
        self.add(f"room-{sid}", at, MessageSent(message_id=uuid.uuid4().hex, sender_id=sender, content="x",
                                                **fields))

    def assign(self, sid: str, at: datetime, agent: str) -> None:
        self.add("desk", at, SupportSessionAssigned(session_id=sid, agent_id=agent, policy_version="p",
                                                    candidates=[]))

    def ticket(self, tid: str, at: datetime, category: str | None) -> None:
        self.add(tid, at, SupportTicketCreated(ticket_id=tid, number=1, display_number="TKT-2026-0001", subject="s",
                                               description="d", customer_id="cust", priority="normal",
                                               created_by="cust", category=category))

    def status(self, tid: str, at: datetime, status: str, **fields: Any) -> None:
        changed = ["status", *fields]
        self.add(tid, at, SupportTicketUpdated(by="a1", changed=changed, status=status, **fields))

    def comment(self, tid: str, at: datetime, *, public: bool = True) -> None:
        self.add(tid, at, SupportTicketCommented(comment_id=uuid.uuid4().hex, author_id="a", author_type="agent",
                                                 content="c", public=public))


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def desk_history() -> History:
    """Three sessions and three tickets whose figures are worked out by hand in the test below."""
    h = History()
    # S1, chat: a1 answers after 30 s (the customer's own message does not count), resolved after 10 min, rated 5.
    h.session("s1", T0, "chat", "c1")
    h.assign("s1", T0, "a1")
    h.say("s1", T0 + timedelta(seconds=5), "c1")
    h.say("s1", T0 + timedelta(seconds=30), "a1")
    h.say("s1", T0 + timedelta(seconds=60), "a1")
    h.add("s1", T0 + _minutes(10), SupportSessionEnded(resolution="done", status="resolved", by="a1"))
    h.add("s1", T0 + _minutes(11), SupportSessionRated(score=5, by="c1"))
    # S2, email: transferred from a1 to a2 (so not a first-contact resolution), answered after 90 s, 30 min, rated 3.
    s2 = T0 + timedelta(hours=1)
    h.session("s2", s2, "email", "c2")
    h.assign("s2", s2, "a1")
    h.add("s2", s2 + _minutes(1), SupportSessionTransferred(target_type="agent", target_id="a2", by="a1"))
    h.assign("s2", s2 + _minutes(1), "a2")
    h.say("s2", s2 + timedelta(seconds=90), "a2")
    h.add("s2", s2 + _minutes(30), SupportSessionEnded(resolution="done", status="resolved", by="a2"))
    h.add("s2", s2 + _minutes(31), SupportSessionRated(score=3, by="c2"))
    # S3, chat: a2 never answers (a system message is nobody's reply); closed unresolved after 20 min.
    s3 = T0 + timedelta(hours=2)
    h.session("s3", s3, "chat", "c3")
    h.assign("s3", s3, "a2")
    h.say("s3", s3 + _minutes(1), "a2", message_type="system")
    h.add("s3", s3 + _minutes(20), SupportSessionEnded(resolution="gone", status="closed", by="a2"))
    # K1, refund: assigned to a1 and opened, an internal comment, one public reply after 10 min, solved after 2 h;
    # both SLA clocks stopped in time.
    k1 = T0 + timedelta(hours=3)
    h.ticket("k1", k1, "refund")
    h.status("k1", k1 + _minutes(1), "open", assigned_to="a1")
    h.comment("k1", k1 + _minutes(5), public=False)
    h.comment("k1", k1 + _minutes(10))
    h.add("k1", k1 + _minutes(10), SlaClockStopped(clock_id="r", metric="first_response"))
    h.status("k1", k1 + _minutes(120), "solved")
    h.add("k1", k1 + _minutes(120), SlaClockStopped(clock_id="s", metric="resolution"))
    # K2, refund: a2's two replies (the first after 20 min, late: the response SLA breached), solved, reopened, and
    # solved again 4 h after creation.
    k2 = T0 + timedelta(hours=4)
    h.ticket("k2", k2, "refund")
    h.status("k2", k2 + _minutes(1), "open", assigned_to="a2")
    h.add("k2", k2 + _minutes(15), SlaBreached(clock_id="r", metric="first_response", due_at=k2, breached_at=k2))
    h.comment("k2", k2 + _minutes(20))
    h.add("k2", k2 + _minutes(20), SlaClockStopped(clock_id="r", metric="first_response"))
    h.comment("k2", k2 + _minutes(40))
    h.status("k2", k2 + _minutes(120), "solved")
    h.status("k2", k2 + _minutes(180), "open")
    h.status("k2", k2 + _minutes(240), "solved")
    h.add("k2", k2 + _minutes(240), SlaClockStopped(clock_id="s", metric="resolution"))
    # K3, technical: unanswered, unassigned, its response SLA breached.
    k3 = T0 + timedelta(hours=5)
    h.ticket("k3", k3, "technical")
    h.add("k3", k3 + _minutes(60), SlaBreached(clock_id="r", metric="first_response", due_at=k3, breached_at=k3))
    return h


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back: hand-built facts never reach the live tables."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            yield connection
        finally:
            await transaction.rollback()


async def figures(conn: asyncpg.Connection, h: History, *, start: date = DAY, end: date = DAY,
                  tz: str = "UTC", group_by: str = "day", reopen_days: int = 7,
                  events: Sequence[RecordedEvent] | None = None) -> SupportAnalytics:
    if events is not None:
        await SupportAnalyticsProjection().apply(conn, events)
    return await report(conn, h.tenant_id, start=start, end=end, tz=ZoneInfo(tz), group_by=group_by,
                        reopen_days=reopen_days)


async def test_the_definitions_give_the_figures_worked_out_by_hand(conn: asyncpg.Connection) -> None:
    h = desk_history()
    got = await figures(conn, h, events=h.events)
    s = got.summary
    assert (s.total_sessions, s.total_tickets, s.resolved, s.ratings) == (3, 3, 5, 2)
    assert s.avg_response_time_seconds == (30 + 90 + 600 + 1200) / 4  # S3 and K3 were never answered
    assert s.avg_resolution_time_minutes == (10 + 30 + 20 + 120 + 240) / 5  # K2: to its last solve
    assert (s.satisfaction_score, s.satisfaction_percent) == (4.0, 50.0)
    assert s.first_contact_resolution == 50.0  # S1 and K1 of S1, S2, K1, K2 (S3 closed unresolved)
    assert (got.sla_compliance.response_sla_met, got.sla_compliance.resolution_sla_met) == (33.3, 100.0)
    assert (got.sla_compliance.response_clocks, got.sla_compliance.resolution_clocks) == (3, 2)
    assert [(c.channel, c.sessions, c.satisfaction, c.avg_response_time_seconds) for c in got.by_channel] == [
        ("chat", 2, 5.0, 30.0), ("email", 1, 3.0, 90.0)]
    assert [(c.category, c.count, c.avg_resolution_min) for c in got.by_category] == [
        ("refund", 2, 180.0), ("technical", 1, None)]
    agents = [(a.agent_id, a.sessions, a.tickets, a.resolved, a.avg_response_time_seconds,
               a.avg_resolution_time_minutes, a.satisfaction, a.first_contact_resolution) for a in got.by_agent]
    assert agents == [("a2", 2, 1, 3, 645.0, 96.7, 3.0, 0.0), ("a1", 1, 1, 2, 315.0, 65.0, 5.0, 100.0)]
    assert [(p.start, p.sessions, p.tickets) for p in got.series] == [(T0.replace(hour=0), 3, 3)]
    hourly = await figures(conn, h, group_by="hour")
    assert [(p.start.hour, p.sessions, p.tickets) for p in hourly.series] == [
        (10, 1, 0), (11, 1, 0), (12, 1, 0), (13, 0, 1), (14, 0, 1), (15, 0, 1)]


async def test_applying_the_history_again_changes_nothing(conn: asyncpg.Connection) -> None:
    h = desk_history()
    once = await figures(conn, h, events=h.events)
    assert await figures(conn, h, events=h.events[len(h.events) // 2:]) == once
    assert await figures(conn, h, events=h.events) == once


async def test_a_reopen_within_the_window_undoes_a_first_contact_resolution(conn: asyncpg.Connection) -> None:
    h = History()
    h.ticket("k", T0, "refund")
    h.comment("k", T0 + _minutes(5))
    h.status("k", T0 + _minutes(60), "solved")
    h.status("k", T0 + timedelta(days=3), "open")
    h.status("k", T0 + timedelta(days=3, hours=1), "solved")
    within = await figures(conn, h, reopen_days=7, events=h.events)
    assert within.summary.first_contact_resolution == 0.0
    assert (await figures(conn, h, reopen_days=2)).summary.first_contact_resolution == 100.0


async def test_a_session_at_23_30_utc_lands_on_the_next_day_in_berlin(conn: asyncpg.Connection) -> None:
    h = History()
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    h.session("late", late, "chat", "c")
    h.session("early", datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "chat", "c")
    await SupportAnalyticsProjection().apply(conn, h.events)
    berlin = ZoneInfo("Europe/Berlin")
    two_days = await figures(conn, h, end=date(2026, 3, 3), tz="Europe/Berlin")
    assert [(p.start, p.sessions) for p in two_days.series] == [
        (datetime(2026, 3, 2, tzinfo=berlin), 1), (datetime(2026, 3, 3, tzinfo=berlin), 1)]
    assert [(p.start, p.sessions) for p in (await figures(conn, h, tz="UTC")).series] == [
        (datetime(2026, 3, 2, tzinfo=UTC), 2)]
    # The period is of local dates too: Berlin's 3 March holds the late session, UTC's does not.
    assert (await figures(conn, h, start=date(2026, 3, 3), end=date(2026, 3, 3), tz="Europe/Berlin")
            ).summary.total_sessions == 1
    assert (await figures(conn, h, start=date(2026, 3, 3), end=date(2026, 3, 3))).summary.total_sessions == 0
    weekly = await figures(conn, h, end=date(2026, 3, 8), tz="Europe/Berlin", group_by="week")
    assert [(p.start, p.sessions) for p in weekly.series] == [(datetime(2026, 3, 2, tzinfo=berlin), 2)]  # Monday


# --- over HTTP ------------------------------------------------------------------------------------------------


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _desk(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.as_user("admin")
    for user_id, role in (("an-agent", "agent"), ("an-cust", "customer")):
        await _ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                    headers=admin), 201)
    await _ok(await client.put("/support/agents/an-agent", json={"max_sessions": 3}, headers=admin))
    await _ok(await client.put("/support/agents/an-agent/status", json={"status": "available"},
                               headers=tenant.as_user("an-agent")))


async def test_the_report_over_http_counts_the_tenants_sessions_and_tickets_only(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool, database_url: str
) -> None:
    await _desk(client, tenant)
    agent, customer = tenant.as_user("an-agent"), tenant.as_user("an-cust")
    sid = (await _ok(await client.post("/support/sessions", json={"initial_message": "help", "channel": "chat"},
                                       headers=customer), 201))["session_id"]
    await _ok(await client.post(f"/support/sessions/{sid}/messages", json={"content": "hello"}, headers=agent), 201)
    await _ok(await client.post(f"/support/sessions/{sid}/end", json={"resolution": "resolved"}, headers=agent))
    await _ok(await client.post(f"/support/sessions/{sid}/rating", json={"score": 4}, headers=customer))
    tid = (await _ok(await client.post("/support/tickets", json={"subject": "s", "description": "d",
                                                                 "category": "billing"}, headers=customer), 201))["id"]
    await _ok(await client.post(f"/support/tickets/{tid}/comments", json={"content": "on it"}, headers=agent), 201)
    await _ok(await client.put(f"/support/tickets/{tid}", json={"assigned_to": "an-agent"}, headers=agent))
    await _ok(await client.put(f"/support/tickets/{tid}", json={"status": "solved"}, headers=agent))
    await caught_up(pool, "support_analytics")

    got = await _ok(await client.get("/support/analytics", params={"group_by": "hour"}, headers=agent))
    summary = got["summary"]
    assert (summary["total_sessions"], summary["total_tickets"], summary["resolved"]) == (1, 1, 2)
    assert (summary["satisfaction_score"], summary["satisfaction_percent"]) == (4.0, 100.0)
    assert summary["first_contact_resolution"] == 100.0
    assert summary["avg_response_time_seconds"] is not None and summary["avg_response_time_seconds"] >= 0
    assert got["by_channel"][0]["channel"] == "chat" and got["by_category"][0]["category"] == "billing"
    assert [(a["agent_id"], a["sessions"], a["tickets"]) for a in got["by_agent"]] == [("an-agent", 1, 1)]
    assert sum(p["sessions"] for p in got["series"]) == 1
    status = await _ok(await client.get("/support/agents/an-agent/status", headers=agent))
    assert status["metrics_today"]["sessions_handled"] == 1 and status["metrics_today"]["satisfaction_score"] == 4.0

    other = await make_tenant(database_url)
    await _ok(await client.post("/users", json={"user_id": "an-agent", "display_name": "x", "role": "agent"},
                                headers=other.as_user("admin")), 201)
    theirs = await _ok(await client.get("/support/analytics", headers=other.as_user("an-agent")))
    assert (theirs["summary"]["total_sessions"], theirs["summary"]["total_tickets"], theirs["series"]) == (0, 0, [])
    assert error_of(await client.get("/support/analytics", headers=customer), 403)["code"] == "FORBIDDEN"

    report_ = await replay(pool, [SupportAnalyticsProjection()], verify=True)
    assert report_.differences == {"support_analytics": 0, "support_analytics_hourly": 0,
                                  "support_analytics_daily": 0} and report_.swapped


@pytest.mark.parametrize(("params", "field"), [
    ({"start_date": "2026-13-01"}, "start_date"),
    ({"end_date": "yesterday"}, "end_date"),
    ({"start_date": "2026-03-02", "end_date": "2026-03-01"}, "end_date"),
    ({"start_date": "2025-01-01", "end_date": "2026-01-02"}, "end_date"),
    ({"start_date": "2026-01-01", "end_date": "2026-03-01", "group_by": "hour"}, "group_by"),
    ({"group_by": "month"}, "group_by"),
    ({"start_date": "9999-12-31", "end_date": "9999-12-31"}, "start_date"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
])
async def test_bad_input_is_a_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    response = await client.get("/support/analytics", params=params, headers=tenant.as_user("admin"))
    assert error_of(response, 400)["field"] == field


# --- the hourly rollup against the facts ------------------------------------------------------------------------


def random_history(rng: random.Random, *, items: int, days: int) -> History:
    """Sessions and tickets at random minutes of `days` days from T0, with every kind of change the figures read."""
    h = History()
    agents, channels, categories = ("a1", "a2", "a3"), ("chat", "email", "phone"), ("refund", "billing", None)
    for n in range(items):
        at = T0 + timedelta(minutes=rng.randrange(days * 24 * 60), seconds=rng.randrange(60))
        if rng.random() < 0.4:
            sid = f"s{n}"
            h.session(sid, at, rng.choice(channels), f"c{n}")
            h.assign(sid, at, rng.choice(agents))
            if rng.random() < 0.7:
                h.say(sid, at + timedelta(seconds=rng.randrange(1, 300)), "agent")
            if rng.random() < 0.2:
                h.add(sid, at + _minutes(6), SupportSessionTransferred(target_type="agent", target_id="a2", by="a1"))
                h.assign(sid, at + _minutes(6), rng.choice(agents))
            if rng.random() < 0.8:
                status = rng.choice(("resolved", "closed"))
                h.add(sid, at + _minutes(rng.randrange(7, 90)), SupportSessionEnded(resolution="r", status=status,
                                                                                   by="a1"))
                if rng.random() < 0.6:
                    h.add(sid, at + _minutes(95), SupportSessionRated(score=rng.randint(1, 5), by=f"c{n}"))
            continue
        tid = f"k{n}"
        h.ticket(tid, at, rng.choice(categories))
        t = at + _minutes(rng.randrange(1, 120))
        h.status(tid, t, "open", assigned_to=rng.choice(agents))
        for _ in range(rng.randint(0, 2)):
            t += _minutes(rng.randrange(1, 300))
            h.comment(tid, t, public=rng.random() < 0.8)
        if rng.random() < 0.3:
            metric = rng.choice(("first_response", "resolution"))
            h.add(tid, t, SlaBreached(clock_id="c", metric=metric, due_at=t, breached_at=t))
        h.add(tid, t, SlaClockStopped(clock_id="c", metric=rng.choice(("first_response", "resolution"))))
        if rng.random() < 0.7:
            t += timedelta(hours=rng.uniform(1, 30))
            h.status(tid, t, "solved", category=rng.choice(categories))
            if rng.random() < 0.4:
                t += timedelta(days=rng.uniform(0.1, 4))
                h.status(tid, t, "open")
                if rng.random() < 0.7:
                    h.status(tid, t + _minutes(30), "solved")
    h.events.sort(key=lambda e: e.created_at)
    h.events = [msgspec.structs.replace(e, position=n + 1) for n, e in enumerate(h.events)]
    return h


async def test_the_rollup_gives_the_figures_of_the_facts_in_whole_hour_zones(conn: asyncpg.Connection) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    h = random_history(rng, items=150, days=4)
    projection = SupportAnalyticsProjection()
    at = 0
    while at < len(h.events):  # in batches of every size, as the catch-up runner and replay cut the log
        step = rng.randint(1, 60)
        await projection.apply(conn, h.events[at:at + step])
        at += step
    assert await rollup_differences(conn, h.tenant_id) == NO_DIFFERENCES
    compared = 0
    for tz in ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"):
        for group_by in GROUPS:
            for reopen_days in (0, 2, 7):
                start = DAY + timedelta(days=rng.randrange(0, 3))
                end = start + timedelta(days=rng.randrange(0, 3))
                assert on_whole_hours(start, end, ZoneInfo(tz), group_by)
                args: dict[str, Any] = {"start": start, "end": end, "tz": ZoneInfo(tz), "group_by": group_by,
                                        "reopen_days": reopen_days}
                summed = await report(conn, h.tenant_id, **args)
                assert summed == await report(conn, h.tenant_id, rollup=False, **args), (tz, group_by, reopen_days)
                compared += summed.summary.total_sessions + summed.summary.total_tickets
    assert compared > 0, "the periods should have held sessions and tickets"


NO_DIFFERENCES = {"support_analytics_hourly": 0, "support_analytics_daily": 0}


async def test_the_rollup_kept_by_difference_is_the_facts_summed_afresh_however_the_log_is_cut(
    conn: asyncpg.Connection
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    h = random_history(rng, items=60, days=2)
    projection = SupportAnalyticsProjection()
    at = 0
    while at < len(h.events):
        step = rng.randint(1, 25)
        await projection.apply(conn, h.events[at:at + step])
        at += step
        if rng.random() < 0.3:  # a resumed runner applies a stretch again
            await projection.apply(conn, h.events[rng.randrange(at):at])
    assert await rollup_differences(conn, h.tenant_id) == NO_DIFFERENCES


async def test_a_rollup_row_left_without_facts_is_deleted(conn: asyncpg.Connection) -> None:
    h = History()
    h.ticket("k", T0, "refund")
    h.status("k", T0 + _minutes(1), "open", assigned_to="a1")
    h.status("k", T0 + _minutes(2), "pending", assigned_to="a2", category="billing")
    projection = SupportAnalyticsProjection()
    await projection.apply(conn, h.events[:2])
    await projection.apply(conn, h.events[2:])
    rows = await conn.fetch("SELECT dim, value, tickets FROM support_analytics_hourly WHERE tenant_id = $1"
                            " ORDER BY dim, value", h.tenant_id)
    assert [tuple(r) for r in rows] == [("agent", "a2", 1), ("all", "", 1), ("category", "billing", 1)]
    assert await conn.fetchval("SELECT count(*) FROM support_analytics_daily WHERE tenant_id = $1", h.tenant_id) == 3
    assert await rollup_differences(conn, h.tenant_id) == NO_DIFFERENCES


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe"])
def test_zones_with_30_or_45_minute_offsets_are_not_on_whole_hours(tz: str) -> None:
    start = date(2026, 3, 30)  # Lord Howe's daylight time (+11, +10:30 in winter) ends on 5 April
    assert not on_whole_hours(start, start + timedelta(days=10), ZoneInfo(tz), "day")
    assert not on_whole_hours(start, start + timedelta(days=10), ZoneInfo(tz), "hour")


def test_a_dst_change_keeps_whole_hour_zones_on_whole_hours() -> None:
    berlin, start = ZoneInfo("Europe/Berlin"), date(2026, 3, 27)  # clocks go forward on 29 March
    assert all(on_whole_hours(start, start + timedelta(days=4), berlin, g) for g in GROUPS)


async def test_a_half_hour_zone_is_aggregated_from_the_facts(conn: asyncpg.Connection) -> None:
    # 18:20 and 18:40 UTC share a rollup hour, but in Kolkata (+05:30) they are 23:50 on 2 March and 00:10 on 3 March.
    h = History()
    h.session("before", datetime(2026, 3, 2, 18, 20, tzinfo=UTC), "chat", "c")
    h.session("after", datetime(2026, 3, 2, 18, 40, tzinfo=UTC), "email", "c")
    kolkata = ZoneInfo("Asia/Kolkata")
    got = await figures(conn, h, end=date(2026, 3, 3), tz="Asia/Kolkata", events=h.events)
    assert [(p.start, p.sessions) for p in got.series] == [
        (datetime(2026, 3, 2, tzinfo=kolkata), 1), (datetime(2026, 3, 3, tzinfo=kolkata), 1)]
    second = await figures(conn, h, start=date(2026, 3, 3), end=date(2026, 3, 3), tz="Asia/Kolkata")
    assert (second.summary.total_sessions, [c.channel for c in second.by_channel]) == (1, ["email"])
    hourly = await figures(conn, h, tz="Asia/Kolkata", group_by="hour")
    assert [(p.start.hour, p.start.minute, p.sessions) for p in hourly.series] == [(23, 0, 1)]
