"""service/domain/support/ticket_sla.py: a ticket's events as clock events, and what to record after each fold.

Property: replaying a random ticket history the way the service does — fold after each ticket event, append
what `sla_changes` asks for — leaves recorded clocks that agree with the fold (every open cycle's due and at-risk
instants, every stopped cycle stopped), a recorded summary equal to the fold's, and nothing more to record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import (
    Event,
    EventMetadata,
    RecordedEvent,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaClockUpdated,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketNoteAdded,
    SupportTicketUpdated,
)
from schemas.sla import PolicyTargets, SlaPolicy
from service.domain.support.sla import fold_clock
from service.domain.support.ticket_sla import clock_events, fold_instant, recorded_summary, sla_changes

T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
POLICY = SlaPolicy(targets=PolicyTargets(first_response_minutes=30, resolution_minutes=240, next_response_minutes=20))


class Log:
    """A ticket stream in memory."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def add(self, events: list[Event], at: datetime) -> None:
        for ev in events:
            self.events.append(RecordedEvent(position=len(self.events) + 1, stream_id="tkt_1",
                                             seq=len(self.events) + 1, tenant_id="t", created_at=at, event=ev,
                                             metadata=EventMetadata(tenant_id="t")))

    def settle(self, now: datetime) -> list[Event]:
        clock = fold_clock(clock_events(self.events), POLICY, None, fold_instant(self.events, now))
        changes = sla_changes(self.events, clock)
        self.add(changes, now)
        return changes


def created() -> SupportTicketCreated:
    return SupportTicketCreated(ticket_id="tkt_1", number=1, display_number="TKT-2026-0001", subject="s",
                                description="d", customer_id="c", priority="normal", created_by="c")


def status(value: str) -> SupportTicketUpdated:
    return SupportTicketUpdated(by="a", changed=["status"], status=value, priority="normal")


def comment(author: str, *, public: bool = True) -> SupportTicketCommented:
    return SupportTicketCommented(comment_id="x", author_id=author, author_type=author, content="c",  # type: ignore[arg-type]
                                  public=public)


def test_ticket_events_map_onto_clock_events_one_to_one() -> None:
    log = Log()
    log.add([created(), SupportTicketNoteAdded(note_id="n", author_id="a", content="internal"),
             comment("agent", public=False), comment("agent"), comment("customer"), status("pending"),
             SupportTicketUpdated(by="a", changed=["priority"], priority="high")], T0)
    kinds = [(e.kind, e.status) for e in clock_events(log.events)]
    assert kinds == [("created", None), ("agent_replied", None), ("customer_replied", None),
                     ("status_changed", "pending")]


def test_a_new_ticket_starts_both_clocks_and_a_timer_breach_is_never_undone_by_a_clock_behind_it() -> None:
    log = Log()
    log.add([created()], T0)
    changes = log.settle(T0)
    assert [(type(c).__name__, getattr(c, "clock_id", None)) for c in changes] == [
        ("SlaClockStarted", "first_response:1"), ("SlaClockStarted", "resolution:1"),
        ("SupportTicketSlaEvaluated", None)]
    due = T0 + timedelta(minutes=30)
    log.add([SlaBreached(clock_id="first_response:1", metric="first_response", due_at=due, breached_at=due)], due)
    assert recorded_summary(log.events).status == "breached"
    log.add([SupportTicketNoteAdded(note_id="n", author_id="a", content="late")], due)
    assert log.settle(due - timedelta(seconds=5)) == []  # our clock a little behind: still breached, nothing new


ACTIONS = st.sampled_from(["open", "pending", "on_hold", "solved", "closed", "agent", "customer", "note"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(ACTIONS, st.integers(min_value=0, max_value=90)), max_size=12))
def test_recording_after_every_event_leaves_the_clocks_and_summary_agreeing_with_the_fold(
    steps: list[tuple[str, int]]
) -> None:
    log, now = Log(), T0
    log.add([created()], now)
    log.settle(now)
    for action, minutes in steps:
        now += timedelta(minutes=minutes)
        event: Event
        if action in ("agent", "customer"):
            event = comment(action)
        elif action == "note":
            event = SupportTicketNoteAdded(note_id="n", author_id="a", content="n")
        else:
            event = status(action)
        log.add([event], now)
        log.settle(now)
    assert log.settle(now) == []  # nothing left to record at the same instant
    fold = fold_clock(clock_events(log.events), POLICY, None, now)
    summary = recorded_summary(log.events)
    assert (summary.response_due, summary.resolution_due, summary.status) == (
        fold.response_due, fold.resolution_due, fold.status)
    recorded: dict[str, tuple[datetime | None, datetime | None, bool]] = {}
    for rec in log.events:
        ev = rec.event
        if isinstance(ev, SlaClockStarted | SlaClockUpdated):
            recorded[ev.clock_id] = (ev.due_at, ev.at_risk_at, False)
        elif isinstance(ev, SlaClockStopped):
            recorded[ev.clock_id] = (*recorded[ev.clock_id][:2], True)
    seen: dict[str, int] = {}
    for cycle in fold.metrics:
        seen[cycle.metric] = seen.get(cycle.metric, 0) + 1
        clock_id = f"{cycle.metric}:{seen[cycle.metric]}"
        if cycle.stopped_at is None:
            assert recorded[clock_id] == (cycle.due_at, cycle.at_risk_at, False)
        else:
            assert clock_id not in recorded or recorded[clock_id][2] is True
