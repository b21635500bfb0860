"""A ticket's SLA clock from its own stream: the clock events its ticket events map to, and what to record after
the fold (the clocks the breach timer follows, and the `sla` the ticket reads).

Clock ids are `<metric>:<n>`, the n-th cycle of that metric in the fold, so the same history names the same
clocks on every instance and after a policy is re-applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.events import (
    Event,
    RecordedEvent,
    SlaAtRisk,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaClockUpdated,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketSlaApplied,
    SupportTicketSlaEvaluated,
    SupportTicketUpdated,
)
from schemas.sla import ClockEvent, SlaClock

# How bad each ticket SLA status is: a timer's at-risk or breach never makes a worse status look better.
SEVERITY = {"within_sla": 1, "paused": 2, "at_risk": 3, "breached": 4}


def clock_events(events: Sequence[RecordedEvent]) -> list[ClockEvent]:
    """The clock's facts in a ticket's events: created, status changes, public agent and requester comments."""
    out: list[ClockEvent] = []
    for rec in events:
        ev = rec.event
        if isinstance(ev, SupportTicketCreated):
            out.append(ClockEvent(kind="created", at=rec.created_at))
        elif isinstance(ev, SupportTicketUpdated) and "status" in ev.changed and ev.status is not None:
            out.append(ClockEvent(kind="status_changed", at=rec.created_at, status=ev.status))  # type: ignore[arg-type]
        elif isinstance(ev, SupportTicketCommented) and ev.author_type == "customer":
            out.append(ClockEvent(kind="customer_replied", at=rec.created_at))
        elif isinstance(ev, SupportTicketCommented) and ev.public:
            out.append(ClockEvent(kind="agent_replied", at=rec.created_at))
    return out


def fold_instant(events: Sequence[RecordedEvent], now: datetime) -> datetime:
    """The instant to fold at: `now`, but never before what the stream already records — its latest event, or an
    at-risk or breach instant the timer recorded (another instance's clock may run a little ahead of ours)."""
    instants = [now]
    for rec in events:
        instants.append(rec.created_at)
        if isinstance(rec.event, SlaBreached):
            instants.append(rec.event.breached_at)
        elif isinstance(rec.event, SlaAtRisk):
            instants.append(rec.event.at_risk_at)
    return max(instants)


def applied_sla(events: Sequence[RecordedEvent]) -> SupportTicketSlaApplied | None:
    """The policy and calendar versions the ticket's clock runs on: the latest applied."""
    found = None
    for rec in events:
        if isinstance(rec.event, SupportTicketSlaApplied):
            found = rec.event
    return found


@dataclass(frozen=True)
class _Clock:
    due_at: datetime | None
    at_risk_at: datetime | None
    stopped: bool


@dataclass(frozen=True)
class SlaSummary:
    """What the ticket's `sla` reads: the last evaluation, made worse by the timer's records since."""

    response_due: datetime | None
    resolution_due: datetime | None
    status: str | None


def recorded_summary(events: Sequence[RecordedEvent]) -> SlaSummary:
    """The summary the ticket's events record (as the tickets projection folds them)."""
    summary = SlaSummary(None, None, None)
    for rec in events:
        ev = rec.event
        if isinstance(ev, SupportTicketSlaEvaluated):
            summary = SlaSummary(ev.response_due, ev.resolution_due, ev.status)
        elif isinstance(ev, SlaAtRisk | SlaBreached):
            summary = SlaSummary(summary.response_due, summary.resolution_due, worse(summary.status, ev))
    return summary


def worse(status: str | None, ev: SlaAtRisk | SlaBreached) -> str:
    """The ticket's status after the timer recorded an at-risk or a breach."""
    recorded = "breached" if isinstance(ev, SlaBreached) else "at_risk"
    return recorded if SEVERITY.get(status or "", 0) < SEVERITY[recorded] else str(status)


def _recorded_clocks(events: Sequence[RecordedEvent]) -> dict[str, _Clock]:
    clocks: dict[str, _Clock] = {}
    for rec in events:
        ev = rec.event
        if isinstance(ev, SlaClockStarted | SlaClockUpdated):
            clocks[ev.clock_id] = _Clock(ev.due_at, ev.at_risk_at, False)
        elif isinstance(ev, SlaClockStopped) and ev.clock_id in clocks:
            clocks[ev.clock_id] = _Clock(clocks[ev.clock_id].due_at, clocks[ev.clock_id].at_risk_at, True)
    return clocks


def sla_changes(events: Sequence[RecordedEvent], clock: SlaClock) -> list[Event]:
    """What to append after `clock` was folded from `events`: every clock started, moved or stopped since the
    recorded ones, then the ticket's new `sla` summary if it differs from the recorded one."""
    recorded = _recorded_clocks(events)
    out: list[Event] = []
    seen: dict[str, int] = {}
    current: set[str] = set()
    for cycle in clock.metrics:
        seen[cycle.metric] = seen.get(cycle.metric, 0) + 1
        clock_id = f"{cycle.metric}:{seen[cycle.metric]}"
        current.add(clock_id)
        before = recorded.get(clock_id)
        if cycle.stopped_at is not None:
            if before is not None and not before.stopped:
                out.append(SlaClockStopped(clock_id=clock_id, metric=cycle.metric))
        elif before is None:
            out.append(SlaClockStarted(clock_id=clock_id, metric=cycle.metric, due_at=cycle.due_at,
                                       at_risk_at=cycle.at_risk_at))
        elif not before.stopped and (before.due_at, before.at_risk_at) != (cycle.due_at, cycle.at_risk_at):
            out.append(SlaClockUpdated(clock_id=clock_id, metric=cycle.metric, due_at=cycle.due_at,
                                       at_risk_at=cycle.at_risk_at))
    # A re-applied policy without a metric the old one had (next response) ends that metric's open clocks.
    for clock_id, before in sorted(recorded.items()):
        if clock_id not in current and not before.stopped:
            out.append(SlaClockStopped(clock_id=clock_id, metric=clock_id.split(":", 1)[0]))
    summary = SlaSummary(clock.response_due, clock.resolution_due, clock.status)
    if summary != recorded_summary(events):
        out.append(SupportTicketSlaEvaluated(response_due=clock.response_due, resolution_due=clock.resolution_due,
                                             status=clock.status))
    return out
