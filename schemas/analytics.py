"""The support analytics report (seed 001 "Analytics"): GET /support/analytics."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class Period(msgspec.Struct, kw_only=True):
    """The local dates reported on (both included), in `timezone`."""

    start: date
    end: date
    timezone: str
    group_by: str


class Summary(msgspec.Struct, kw_only=True):
    """Figures over every session and ticket created in the period (README "Support analytics" defines them)."""

    total_sessions: int
    total_tickets: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction_score: float | None  # mean rating, 1-5
    satisfaction_percent: float | None  # share of ratings that are 4 or 5
    first_contact_resolution: float | None  # percent of resolved sessions and tickets
    resolved: int
    ratings: int


class ChannelFigures(msgspec.Struct, kw_only=True):
    channel: str
    sessions: int
    tickets: int
    satisfaction: float | None
    avg_response_time_seconds: float | None


class CategoryFigures(msgspec.Struct, kw_only=True):
    category: str
    count: int
    avg_resolution_min: float | None


class AgentFigures(msgspec.Struct, kw_only=True):
    agent_id: str
    sessions: int
    tickets: int
    resolved: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction: float | None
    first_contact_resolution: float | None


class SlaCompliance(msgspec.Struct, kw_only=True):
    """Percent of ended SLA clocks met (null without any)."""

    response_sla_met: float | None
    resolution_sla_met: float | None
    response_clocks: int
    resolution_clocks: int


class SeriesPoint(msgspec.Struct, kw_only=True):
    """One bucket (hour, day or week of local time, starting at `start`) that has sessions or tickets."""

    start: datetime
    sessions: int
    tickets: int
    avg_response_time_seconds: float | None
    avg_resolution_time_minutes: float | None
    satisfaction_score: float | None


class SupportAnalytics(msgspec.Struct, kw_only=True):
    period: Period
    summary: Summary
    by_channel: list[ChannelFigures]
    by_category: list[CategoryFigures]
    by_agent: list[AgentFigures]
    sla_compliance: SlaCompliance
    series: list[SeriesPoint]
