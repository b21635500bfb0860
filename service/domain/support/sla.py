"""SLA rules: which policy applies to a ticket, and the clock as a pure fold of the ticket's clock events.

The clock runs while the ticket is `new` or `open`, is paused while it is `pending` or `on_hold`, and is
stopped while it is `solved` or `closed`; only running time counts, in the policy's business hours (or
24/7). Metrics, each a series of cycles:

- `first_response`: from creation to the first public agent reply (or to solved/closed, if it comes first).
- `next_response` (when the policy has a target): from a customer reply after the previous response cycle
  ended, to the next public agent reply (or to solved/closed).
- `resolution`: from creation to solved (or closed); leaving solved/closed for an open status is a reopen,
  which starts a new episode with the whole target again.

A cycle's `due_at` is the first instant at which it counts as breached: an agent reply at or after it is a
breach. `at_risk_at` is the instant at which `at_risk_percent` of the target has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from schemas.events import SlaAtRisk, SlaBreached
from schemas.sla import (
    ClockEvent,
    ClockSegment,
    MetricClock,
    MetricStatus,
    SlaClock,
    SlaMetric,
    SlaPolicy,
    SlaStatus,
)
from service.domain.support.calendars import Calendar, add_business_time, business_time_between

PAUSED_STATUSES = frozenset({"pending", "on_hold"})
STOPPED_STATUSES = frozenset({"solved", "closed"})
_SEVERITY: dict[MetricStatus, int] = {"breached": 4, "at_risk": 3, "paused": 2, "within_sla": 1, "met": 0}

T = TypeVar("T")


def matches(policy: SlaPolicy, *, priority: str | None, category: str | None, channel: str | None) -> bool:
    """Whether every condition of `policy` holds for a ticket with these attributes (empty lists match all)."""
    c = policy.conditions
    return all(not allowed or value in allowed
               for allowed, value in ((c.priority, priority), (c.category, category), (c.channel, channel)))


def match_policy(policies: Sequence[tuple[T, SlaPolicy]], *, priority: str | None, category: str | None,
                 channel: str | None) -> T | None:
    """The key of the first policy, in order, whose conditions the ticket meets; None when none does."""
    for key, policy in policies:
        if matches(policy, priority=priority, category=category, channel=channel):
            return key
    return None


def _state(status: str) -> str:
    if status in PAUSED_STATUSES:
        return "paused"
    return "stopped" if status in STOPPED_STATUSES else "running"


@dataclass
class _Cycle:
    metric: SlaMetric
    episode: int
    target_minutes: int
    started_at: datetime
    stopped_at: datetime | None = None


@dataclass
class _Walk:
    """What one pass over the events finds: the segments and every metric cycle."""

    segments: list[ClockSegment] = field(default_factory=list)
    cycles: list[_Cycle] = field(default_factory=list)


def _walk(events: Sequence[ClockEvent], policy: SlaPolicy) -> _Walk:
    walk = _Walk()
    targets = policy.targets
    status = "new"
    episode = 1
    response: _Cycle | None = None
    resolution: _Cycle | None = None
    seg_start: datetime | None = None
    seg_state = ""

    def set_state(at: datetime, state: str) -> None:
        nonlocal seg_start, seg_state
        if state == seg_state:
            return
        if seg_start is not None:
            walk.segments.append(ClockSegment(seg_start, at, seg_state))  # type: ignore[arg-type]
        seg_start, seg_state = at, state

    for event in events:
        at = event.at
        if event.kind == "created":
            if resolution is not None:
                continue  # created is the first event; a repeat changes nothing
            set_state(at, "running")
            response = _Cycle("first_response", episode, targets.first_response_minutes, at)
            resolution = _Cycle("resolution", episode, targets.resolution_minutes, at)
            walk.cycles += [response, resolution]
        elif resolution is None:
            continue  # nothing runs before the ticket exists
        elif event.kind == "status_changed" and event.status is not None:
            was_stopped = status in STOPPED_STATUSES
            status = event.status
            set_state(at, _state(status))
            if status in STOPPED_STATUSES:
                if resolution.stopped_at is None:
                    resolution.stopped_at = at
                if response is not None and response.stopped_at is None:
                    response.stopped_at = at
            elif was_stopped:
                episode += 1
                resolution = _Cycle("resolution", episode, targets.resolution_minutes, at)
                walk.cycles.append(resolution)
        elif event.kind == "agent_replied":
            if response is not None and response.stopped_at is None:
                response.stopped_at = at
        elif event.kind == "customer_replied":
            # The first response cycle exists from creation on, so an idle one has ended.
            idle = response is None or response.stopped_at is not None
            if idle and targets.next_response_minutes is not None:
                response = _Cycle("next_response", episode, targets.next_response_minutes, at)
                walk.cycles.append(response)
    if seg_start is not None:
        walk.segments.append(ClockSegment(seg_start, None, seg_state))  # type: ignore[arg-type]
    return walk


_Stretches = list[tuple[datetime, datetime | None]]


def _running(segments: list[ClockSegment], start: datetime, stop: datetime | None) -> _Stretches:
    """The stretches within [start, stop) in which the clock ran; the last may be open-ended (None)."""
    out: _Stretches = []
    for seg in segments:
        if seg.state != "running":
            continue
        lo = max(seg.start, start)
        hi = seg.end if stop is None else (stop if seg.end is None else min(seg.end, stop))
        if hi is None or lo < hi:
            out.append((lo, hi))
    return out


def _reached(stretches: _Stretches, amount: timedelta,
             calendar: Calendar | None) -> datetime | None:
    """The instant at which `amount` of running business time has been counted; None if the stretches end first."""
    remaining = amount
    for lo, hi in stretches:
        if hi is None:
            return add_business_time(lo, remaining, calendar)
        have = business_time_between(lo, hi, calendar)
        if have >= remaining:
            return add_business_time(lo, remaining, calendar)
        remaining -= have
    return None


def _metric(cycle: _Cycle, segments: list[ClockSegment], policy: SlaPolicy, calendar: Calendar | None,
            now: datetime) -> MetricClock:
    stretches = _running(segments, cycle.started_at, cycle.stopped_at)
    target = timedelta(minutes=cycle.target_minutes)
    due = _reached(stretches, target, calendar)
    at_risk = _reached(stretches, target * policy.at_risk_percent / 100, calendar)
    until = now if cycle.stopped_at is None else min(now, cycle.stopped_at)
    elapsed = sum((business_time_between(lo, until if hi is None else min(hi, until), calendar)
                   for lo, hi in stretches), timedelta(0))
    status: MetricStatus
    if cycle.stopped_at is not None:
        status = "breached" if due is not None and cycle.stopped_at >= due else "met"
    elif due is not None and now >= due:
        status = "breached"
    elif not stretches or stretches[-1][1] is not None:
        status = "paused"
    elif at_risk is not None and now >= at_risk:
        status = "at_risk"
    else:
        status = "within_sla"
    return MetricClock(
        metric=cycle.metric, episode=cycle.episode, target_minutes=cycle.target_minutes,
        started_at=cycle.started_at, stopped_at=cycle.stopped_at, due_at=due, at_risk_at=at_risk,
        elapsed_seconds=int(elapsed.total_seconds()), status=status,
    )


def fold_clock(events: Sequence[ClockEvent], policy: SlaPolicy, calendar: Calendar | None,
               now: datetime) -> SlaClock:
    """The ticket's SLA clock at `now` from its clock events (those after `now` are not yet facts)."""
    seen = sorted((e for e in events if e.at <= now), key=lambda e: e.at)  # stable: same-instant order kept
    walk = _walk(seen, policy)
    metrics = [_metric(c, walk.segments, policy, calendar, now) for c in walk.cycles]
    latest: dict[str, MetricClock] = {}
    for metric in metrics:
        latest[metric.metric] = metric
    response = next((m for m in reversed(metrics)
                     if m.metric != "resolution" and m.stopped_at is None), None)
    resolution = latest.get("resolution")
    worst: MetricStatus = max((m.status for m in latest.values()), key=_SEVERITY.__getitem__, default="met")
    status: SlaStatus = "within_sla" if worst == "met" else worst
    return SlaClock(
        response_due=response.due_at if response else None,
        resolution_due=resolution.due_at if resolution and resolution.stopped_at is None else None,
        status=status, segments=walk.segments, metrics=metrics,
    )


def timer_events(*, clock_id: str, metric: str, due_at: datetime | None, at_risk_at: datetime | None,
                 at_risk_recorded: bool, breached: bool, stopped: bool, now: datetime) -> list[SlaAtRisk | SlaBreached]:
    """What the breach timer records for one clock at `now`: at risk, then breached, each once, when due."""
    if stopped or breached or due_at is None:
        return []
    out: list[SlaAtRisk | SlaBreached] = []
    if not at_risk_recorded and at_risk_at is not None and at_risk_at < due_at and now >= at_risk_at:
        out.append(SlaAtRisk(clock_id=clock_id, metric=metric, due_at=due_at, at_risk_at=at_risk_at))
    if now >= due_at:
        out.append(SlaBreached(clock_id=clock_id, metric=metric, due_at=due_at, breached_at=due_at))
    return out
