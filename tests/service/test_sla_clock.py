"""The SLA clock fold: policy matching, examples of pauses and reopens, and a minute-by-minute reference."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.sla import (
    WEEKDAYS,
    BusinessCalendar,
    ClockEvent,
    PolicyConditions,
    PolicyTargets,
    SlaPolicy,
    WorkingPeriod,
)
from service.domain.support.calendars import compile_calendar
from service.domain.support.sla import fold_clock, match_policy
from tests.service.test_sla_calendars import calendars, instants_near, weekly_minutes

MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)  # a Monday


def policy(first: int = 60, resolution: int = 480, next_response: int | None = None, pct: int = 75) -> SlaPolicy:
    return SlaPolicy(targets=PolicyTargets(first_response_minutes=first, resolution_minutes=resolution,
                                           next_response_minutes=next_response), at_risk_percent=pct)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created(m: int = 0) -> ClockEvent:
    return ClockEvent(kind="created", at=at(m))


def status(m: int, value: Any) -> ClockEvent:
    return ClockEvent(kind="status_changed", at=at(m), status=value)


def agent(m: int) -> ClockEvent:
    return ClockEvent(kind="agent_replied", at=at(m))


def customer(m: int) -> ClockEvent:
    return ClockEvent(kind="customer_replied", at=at(m))


# --- examples ------------------------------------------------------------------------------------------

def test_the_first_matching_policy_in_order_wins() -> None:
    urgent = SlaPolicy(conditions=PolicyConditions(priority=("urgent",)), targets=PolicyTargets(10, 60))
    billing = SlaPolicy(conditions=PolicyConditions(category=("billing",), channel=("email",)),
                        targets=PolicyTargets(30, 120))
    anything = SlaPolicy(targets=PolicyTargets(60, 480))
    ordered = [("urgent", urgent), ("billing", billing), ("default", anything)]
    assert match_policy(ordered, priority="urgent", category="billing", channel="email") == "urgent"
    assert match_policy(ordered, priority="low", category="billing", channel="email") == "billing"
    assert match_policy(ordered, priority="low", category="billing", channel="chat") == "default"
    assert match_policy(ordered[:2], priority="low", category=None, channel=None) is None


def test_a_new_ticket_is_within_sla_then_at_risk_then_breached() -> None:
    events = [created()]
    assert fold_clock(events, policy(), None, at(30)).status == "within_sla"
    assert fold_clock(events, policy(), None, at(45)).status == "at_risk"
    clock = fold_clock(events, policy(), None, at(60))
    assert (clock.status, clock.response_due, clock.resolution_due) == ("breached", at(60), at(480))


def test_pending_pauses_every_clock_and_moves_the_due_times() -> None:
    events = [created(), status(10, "pending"), status(100, "open")]
    paused = fold_clock(events, policy(), None, at(50))
    assert (paused.status, paused.response_due, paused.resolution_due) == ("paused", None, None)
    resumed = fold_clock(events, policy(), None, at(101))
    assert (resumed.response_due, resumed.resolution_due) == (at(150), at(570))
    assert [(s.start, s.end, s.state) for s in resumed.segments] == [
        (at(0), at(10), "running"), (at(10), at(100), "paused"), (at(100), None, "running")]


def test_the_first_public_agent_reply_meets_the_first_response_target() -> None:
    clock = fold_clock([created(), agent(20)], policy(), None, at(100))
    first = next(m for m in clock.metrics if m.metric == "first_response")
    assert (first.status, first.stopped_at, first.elapsed_seconds) == ("met", at(20), 20 * 60)
    assert clock.response_due is None and clock.status == "within_sla"


def test_a_customer_reply_after_an_answer_starts_the_next_response_clock() -> None:
    events = [created(), agent(5), customer(30), customer(40), agent(70)]
    clock = fold_clock(events, policy(next_response=30), None, at(55))
    assert clock.response_due == at(60) and clock.status == "at_risk"
    later = fold_clock(events, policy(next_response=30), None, at(80))
    nxt = [m for m in later.metrics if m.metric == "next_response"]
    assert [(m.started_at, m.status) for m in nxt] == [(at(30), "breached")]


def test_a_reopen_starts_a_new_resolution_episode_with_the_whole_target() -> None:
    events = [created(), agent(5), status(400, "solved"), status(900, "open")]
    clock = fold_clock(events, policy(), None, at(901))
    resolution = [(m.episode, m.status) for m in clock.metrics if m.metric == "resolution"]
    assert resolution == [(1, "met"), (2, "within_sla")]
    assert clock.resolution_due == at(900 + 480)


def test_business_hours_push_the_due_time_to_the_next_working_morning() -> None:
    office = compile_calendar(BusinessCalendar(
        timezone="Europe/Berlin", periods=tuple(WorkingPeriod(d, "09:00", "17:00") for d in WEEKDAYS[:5])))
    friday_afternoon = datetime(2026, 6, 19, 16, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    clock = fold_clock([ClockEvent(kind="created", at=friday_afternoon)], policy(), office,
                       friday_afternoon + timedelta(hours=1))
    assert clock.response_due == datetime(2026, 6, 22, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert clock.status == "within_sla"


def test_events_after_now_are_not_yet_facts() -> None:
    assert fold_clock([created(), agent(20)], policy(), None, at(10)).response_due == at(60)


# --- the reference: the same rules, one minute at a time --------------------------------------------------

@lru_cache(maxsize=4096)
def _working_minutes(calendar: BusinessCalendar, day: date) -> frozenset[int]:
    if day in calendar.holidays:
        return frozenset()
    name = WEEKDAYS[day.weekday()]
    return frozenset(m for p in calendar.periods if p.day == name
                     for m in range(int(p.start[:2]) * 60 + int(p.start[3:]), int(p.end[:2]) * 60 + int(p.end[3:])))


def working(calendar: BusinessCalendar | None, t: datetime) -> bool:
    if calendar is None:
        return True
    wall = t.astimezone(ZoneInfo(calendar.timezone))
    return wall.hour * 60 + wall.minute in _working_minutes(calendar, wall.date())


@dataclass
class RefCycle:
    metric: str
    episode: int
    target: int
    risk: timedelta
    started: datetime
    stopped: datetime | None = None
    counted: timedelta = timedelta(0)
    elapsed: timedelta | None = None
    due: datetime | None = None
    at_risk: datetime | None = None


def reference(events: list[ClockEvent], pol: SlaPolicy, calendar: BusinessCalendar | None,
              now: datetime) -> dict[str, Any]:
    targets = pol.targets
    by_minute: dict[datetime, list[ClockEvent]] = {}
    for e in sorted((e for e in events if e.at <= now), key=lambda e: e.at):
        by_minute.setdefault(e.at, []).append(e)
    cycles: list[RefCycle] = []
    state, status, episode = "none", "new", 1
    response: RefCycle | None = None
    states: dict[datetime, str] = {}

    def cycle(metric: str, target: int, t: datetime) -> RefCycle:
        c = RefCycle(metric, episode, target, timedelta(microseconds=target * 60 * pol.at_risk_percent * 10_000), t)
        cycles.append(c)
        return c

    t = min(by_minute)
    horizon = now + timedelta(days=12)
    while t < horizon:
        for e in by_minute.get(t, []):
            if e.kind == "created" and state == "none":
                state = "running"
                response = cycle("first_response", targets.first_response_minutes, t)
                cycle("resolution", targets.resolution_minutes, t)
            elif state == "none":
                continue
            elif e.kind == "status_changed":
                was_stopped = status in ("solved", "closed")
                status = e.status or status
                state = {"pending": "paused", "on_hold": "paused", "solved": "stopped", "closed": "stopped"}.get(
                    status, "running")
                if state == "stopped":
                    for c in cycles:
                        if c.stopped is None:
                            c.stopped = t
                elif was_stopped:
                    episode += 1
                    cycle("resolution", targets.resolution_minutes, t)
            elif e.kind == "agent_replied":
                if response is not None and response.stopped is None:
                    response.stopped = t
            elif e.kind == "customer_replied":
                idle = response is None or response.stopped is not None
                if idle and targets.next_response_minutes is not None:
                    response = cycle("next_response", targets.next_response_minutes, t)
        if t == now:
            for c in cycles:
                c.elapsed = c.counted
            if state != "running" or all(c.stopped is not None or c.due is not None for c in cycles):
                break
        if t < now:
            states[t] = state
        if state == "running" and working(calendar, t):
            for c in cycles:
                if c.stopped is not None:
                    continue
                before, c.counted = c.counted, c.counted + MINUTE
                target = timedelta(minutes=c.target)
                if c.due is None and before < target <= c.counted:
                    c.due = t + (target - before)
                if c.at_risk is None and before < c.risk <= c.counted:
                    c.at_risk = t + (c.risk - before)
        t += MINUTE
    out = []
    for c in cycles:
        if c.stopped is not None:
            verdict = "breached" if c.due is not None else "met"
        elif c.due is not None and now >= c.due:
            verdict = "breached"
        elif state != "running":
            verdict = "paused"
        elif c.at_risk is not None and now >= c.at_risk:
            verdict = "at_risk"
        else:
            verdict = "within_sla"
        elapsed = c.elapsed if c.elapsed is not None else c.counted
        out.append((c.metric, c.episode, c.started, c.stopped, c.due, c.at_risk, verdict,
                    int(elapsed.total_seconds())))
    return {"metrics": out, "states": states}


@st.composite
def histories(draw: st.DrawFn, base: date) -> tuple[list[ClockEvent], datetime]:
    start = draw(instants_near(base))
    events = [ClockEvent(kind="created", at=start)]
    t = start
    for _ in range(draw(st.integers(0, 8))):
        t += timedelta(minutes=draw(st.integers(0, 720)))
        kind = draw(st.sampled_from(["status_changed", "status_changed", "agent_replied", "customer_replied"]))
        value = draw(st.sampled_from(["open", "pending", "on_hold", "solved", "closed"])) \
            if kind == "status_changed" else None
        events.append(ClockEvent(kind=kind, at=t, status=value))
    now = start + timedelta(minutes=draw(st.integers(0, int((t - start) / MINUTE) + 720)))
    return draw(st.permutations(events)), now  # the fold must order them itself


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_fold_matches_the_minute_by_minute_reference(data: st.DataObject) -> None:
    calendar, base = data.draw(calendars())
    if data.draw(st.booleans()):
        calendar = None  # type: ignore[assignment]
    most = weekly_minutes(calendar) if calendar else 3000
    pol = SlaPolicy(
        targets=PolicyTargets(
            first_response_minutes=data.draw(st.integers(1, min(most, 600))),
            resolution_minutes=data.draw(st.integers(1, min(most, 2000))),
            next_response_minutes=data.draw(st.none() | st.integers(1, min(most, 600))),
        ),
        at_risk_percent=data.draw(st.integers(1, 99)),
    )
    events, now = data.draw(histories(base))
    # Same-instant events keep their order: the reference sorts stably too, from the same permutation.
    clock = fold_clock(events, pol, compile_calendar(calendar) if calendar else None, now)
    ref = reference(events, pol, calendar, now)
    got = [(m.metric, m.episode, m.started_at, m.stopped_at, m.due_at, m.at_risk_at, m.status, m.elapsed_seconds)
           for m in clock.metrics]
    assert got == ref["metrics"]
    for minute, state in ref["states"].items():
        seg = next(s for s in clock.segments if s.start <= minute and (s.end is None or minute < s.end))
        assert seg.state == state
