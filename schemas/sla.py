"""SLA shapes: business-hours calendars, policies, the clock's input events and its folded state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# "HH:MM", 00:00 to 23:59; a period's end may also be "24:00" (midnight at the end of the day).
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
SlaMetric = Literal["first_response", "next_response", "resolution"]
SlaStatus = Literal["within_sla", "at_risk", "breached", "paused"]
MetricStatus = Literal["within_sla", "at_risk", "breached", "paused", "met"]
# The ticket statuses the clock understands (the tickets' status machine).
TicketStatus = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
Minutes = Annotated[int, msgspec.Meta(ge=1, le=525_600)]  # at most a year


class WorkingPeriod(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Working time on one weekday, local wall-clock time, start inclusive and end exclusive."""

    day: Weekday
    start: ClockTime
    end: ClockTime


class BusinessCalendar(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When a tenant works: an IANA timezone, working periods per weekday, and holidays (local dates)."""

    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    periods: Annotated[tuple[WorkingPeriod, ...], msgspec.Meta(min_length=1, max_length=70)]
    holidays: Annotated[tuple[date, ...], msgspec.Meta(max_length=1000)] = ()


class PolicyConditions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a ticket must have for a policy to apply; an empty list matches anything."""

    priority: Annotated[tuple[str, ...], msgspec.Meta(max_length=20)] = ()
    category: Annotated[tuple[str, ...], msgspec.Meta(max_length=50)] = ()
    channel: Annotated[tuple[str, ...], msgspec.Meta(max_length=20)] = ()


class PolicyTargets(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Targets in (business) minutes; next_response is optional."""

    first_response_minutes: Minutes
    resolution_minutes: Minutes
    next_response_minutes: Minutes | None = None


class SlaPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One policy: conditions, targets, a calendar (None: 24/7) and the share of a target that is at risk."""

    conditions: PolicyConditions = PolicyConditions()
    targets: PolicyTargets
    calendar_id: str | None = None
    at_risk_percent: Annotated[int, msgspec.Meta(ge=1, le=99)] = 75


ClockEventKind = Literal["created", "status_changed", "agent_replied", "customer_replied"]


class ClockEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One fact the SLA clock folds: a ticket's creation, a status change, or a public reply.

    A tickets stream maps onto these one to one: ticket created → `created` (status new); a status
    change → `status_changed` with the new status (leaving `solved` or `closed` for an open status is a
    reopen); a public comment by an agent → `agent_replied`; a comment by the requester →
    `customer_replied`. Internal notes are not clock events.
    """

    kind: ClockEventKind
    at: datetime
    status: TicketStatus | None = None  # status_changed only


class ClockSegment(msgspec.Struct, frozen=True):
    """A stretch of the ticket's life in which the clock ran, was paused, or was stopped."""

    start: datetime
    end: datetime | None
    state: Literal["running", "paused", "stopped"]


class MetricClock(msgspec.Struct, frozen=True):
    """One cycle of one metric: when it started, when it stopped, its due and at-risk instants."""

    metric: SlaMetric
    episode: int  # resolution: 1, then one more per reopen; response metrics: the episode they ran in
    target_minutes: int
    started_at: datetime
    stopped_at: datetime | None
    due_at: datetime | None  # None while paused with time left, or when it stopped with time left
    at_risk_at: datetime | None
    elapsed_seconds: int  # business seconds counted up to the stop or to now
    status: MetricStatus


class SlaClock(msgspec.Struct, frozen=True):
    """The folded clock of one ticket at `now` (seed 001's `sla {response_due, resolution_due, status}`)."""

    response_due: datetime | None
    resolution_due: datetime | None
    status: SlaStatus
    segments: list[ClockSegment]
    metrics: list[MetricClock]


# --- the API under /support/sla ------------------------------------------------------------------------

SlaName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


class CalendarBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST/PUT /support/sla/calendars: the whole calendar (a PUT restates it as a new version)."""

    name: SlaName
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    periods: Annotated[list[WorkingPeriod], msgspec.Meta(min_length=1, max_length=70)]
    holidays: Annotated[list[date], msgspec.Meta(max_length=1000)] = []
    # An iCalendar file (RFC 5545) whose all-day events are holidays too (service/domain/support/holidays.py).
    holidays_ics: Annotated[str, msgspec.Meta(max_length=60_000)] | None = None

    def calendar(self, imported: list[date] | None = None) -> BusinessCalendar:
        """The calendar this body describes with `imported` holidays added, holidays sorted and once each."""
        return BusinessCalendar(timezone=self.timezone, periods=tuple(self.periods),
                                holidays=tuple(sorted({*self.holidays, *(imported or [])})))


class CalendarView(msgspec.Struct, kw_only=True):
    calendar_id: str
    name: str
    version: int
    timezone: str
    periods: list[WorkingPeriod]
    holidays: list[date]
    updated_by: str
    updated_at: datetime


class PolicyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """POST/PUT /support/sla/policies: the whole policy; `calendar_id` null means 24/7."""

    name: SlaName
    conditions: PolicyConditions = PolicyConditions()
    targets: PolicyTargets
    calendar_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    at_risk_percent: Annotated[int, msgspec.Meta(ge=1, le=99)] = 75

    def policy(self) -> SlaPolicy:
        """The policy this body describes."""
        return SlaPolicy(conditions=self.conditions, targets=self.targets, calendar_id=self.calendar_id,
                         at_risk_percent=self.at_risk_percent)


class PolicyView(msgspec.Struct, kw_only=True):
    policy_id: str
    name: str
    version: int
    rank: int  # policies are matched by rank, lowest first; the first match wins
    conditions: PolicyConditions
    targets: PolicyTargets
    calendar_id: str | None
    at_risk_percent: int
    updated_by: str
    updated_at: datetime


class PolicyOrder(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /support/sla/policy-order: every live policy id, once each, in matching order."""

    policy_ids: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
                          msgspec.Meta(max_length=500)]


class SlaMatchBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """POST /support/sla/match: a ticket's attributes."""

    priority: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    channel: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class SlaMatch(msgspec.Struct, kw_only=True):
    """The policy version (and calendar version, null for 24/7) a ticket with those attributes gets now."""

    policy_id: str
    policy_version: int
    calendar_id: str | None
    calendar_version: int | None
