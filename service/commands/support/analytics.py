"""The support analytics report: the period's figures from the analytics projection (projections/support_analytics.py).

Periods whose buckets are bounded by whole UTC hours (every zone with a whole-hour offset) are summed from the
hourly rollup; others (offsets of 30 or 45 minutes) are aggregated from the facts, with the same definitions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from eventstore.types import Connection
from projections.support_analytics import GROUPED_BY, support_report
from schemas import analytics as a
from schemas.errors import ValidationError
from service.domain.support.analytics import on_whole_hours, period


async def report(conn: Connection, tenant_id: str, *, start: date, end: date, tz: ZoneInfo, group_by: str,
                 reopen_days: int, rollup: bool = True) -> a.SupportAnalytics:
    """The tenant's sessions and tickets created on the local dates `start` through `end`, with every grouping.

    `rollup=False` aggregates the facts even where the hourly rollup would do (to compare the two)."""
    since, until = period(start, end, tz, group_by)
    hourly = rollup and on_whole_hours(start, end, tz, group_by)
    try:
        rows = await support_report(conn, tenant_id, start=since, end=until, timezone=tz.key, group_by=group_by,
                                    reopen_days=reopen_days, hourly=hourly)
    except asyncpg.InvalidParameterValueError:
        # A zone newer than PostgreSQL's own timezone database.
        raise ValidationError(f"timezone {tz.key} is not known to the database", field="timezone") from None
    groups: dict[str, list[asyncpg.Record]] = {kind: [] for kind in GROUPED_BY.values()}
    for row in rows:
        groups[GROUPED_BY[row["grp"]]].append(row)
    total = groups["summary"][0] if groups["summary"] else None
    return a.SupportAnalytics(
        period=a.Period(start=start, end=end, timezone=tz.key, group_by=group_by),
        summary=_summary(total),
        by_channel=[_channel(r) for r in _sorted(groups["channel"], "channel")],
        by_category=[_category(r) for r in _sorted(groups["category"], "category")],
        by_agent=[_agent(r) for r in _sorted(groups["agent"], "agent_id")],
        sla_compliance=_sla(total),
        series=[_point(r, tz) for r in sorted(groups["bucket"], key=lambda r: r["bucket"])],
    )


def _sorted(rows: list[asyncpg.Record], key: str) -> list[asyncpg.Record]:
    # The busiest first; rows without the key (sessions have no category, tickets no channel) left out.
    present = [r for r in rows if r[key] is not None]
    return sorted(present, key=lambda r: (-(r["sessions"] + r["tickets"]), r[key]))


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _summary(row: asyncpg.Record | None) -> a.Summary:
    if row is None:
        return a.Summary(total_sessions=0, total_tickets=0, avg_response_time_seconds=None,
                         avg_resolution_time_minutes=None, satisfaction_score=None, satisfaction_percent=None,
                         first_contact_resolution=None, resolved=0, ratings=0)
    return a.Summary(
        total_sessions=row["sessions"], total_tickets=row["tickets"],
        avg_response_time_seconds=_rounded(row["response_seconds"]),
        avg_resolution_time_minutes=_rounded(row["resolution_minutes"]),
        satisfaction_score=_rounded(row["rating"], 2), satisfaction_percent=_percent(row["satisfied"], row["ratings"]),
        first_contact_resolution=_percent(row["fcr"], row["fcr_base"]), resolved=row["resolved"],
        ratings=row["ratings"],
    )


def _channel(row: asyncpg.Record) -> a.ChannelFigures:
    return a.ChannelFigures(channel=row["channel"], sessions=row["sessions"], tickets=row["tickets"],
                            satisfaction=_rounded(row["rating"], 2),
                            avg_response_time_seconds=_rounded(row["response_seconds"]))


def _category(row: asyncpg.Record) -> a.CategoryFigures:
    return a.CategoryFigures(category=row["category"], count=row["tickets"],
                             avg_resolution_min=_rounded(row["resolution_minutes"]))


def _agent(row: asyncpg.Record) -> a.AgentFigures:
    return a.AgentFigures(
        agent_id=row["agent_id"], sessions=row["sessions"], tickets=row["tickets"], resolved=row["resolved"],
        avg_response_time_seconds=_rounded(row["response_seconds"]),
        avg_resolution_time_minutes=_rounded(row["resolution_minutes"]), satisfaction=_rounded(row["rating"], 2),
        first_contact_resolution=_percent(row["fcr"], row["fcr_base"]),
    )


def _sla(row: asyncpg.Record | None) -> a.SlaCompliance:
    figures: dict[str, Any] = dict(row) if row is not None else {}
    clocks, met = figures.get("response_clocks", 0), figures.get("response_met", 0)
    r_clocks, r_met = figures.get("resolution_clocks", 0), figures.get("resolution_met", 0)
    return a.SlaCompliance(response_sla_met=_percent(met, clocks), resolution_sla_met=_percent(r_met, r_clocks),
                           response_clocks=clocks, resolution_clocks=r_clocks)


def _point(row: asyncpg.Record, tz: ZoneInfo) -> a.SeriesPoint:
    start: datetime = row["bucket"]
    return a.SeriesPoint(
        start=start.astimezone(tz), sessions=row["sessions"], tickets=row["tickets"],
        avg_response_time_seconds=_rounded(row["response_seconds"]),
        avg_resolution_time_minutes=_rounded(row["resolution_minutes"]), satisfaction_score=_rounded(row["rating"], 2),
    )
